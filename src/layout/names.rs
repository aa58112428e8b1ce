//! What a dataset calls its streams. The video and metas streams are always `video` and
//! `metas`; the embedding stream is named after the trainer's `embedding_type`, which
//! cosmos-predict2.5 takes as `t5_xxl` or `umt5_xxl` ([`EmbeddingName`]). The name is the
//! stream's directory (`<bin>/<name>/part_NNNNNN/NNNNNN.tar`), its `wdinfo.json` `data_keys`
//! entry and so the key a webdataset reader files its members under, so every path of a
//! version is made here from one [`StreamNames`].

use serde::{Deserialize, Serialize};

use super::{shardindex_in, Stream, TarId, STREAM_COUNT};
use crate::storage::Location;

/// The embedding stream's name: the encoder family whose embeddings it holds, as the
/// trainer's `embedding_type` names it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum EmbeddingName {
    /// `t5_xxl`: a T5 encoder's (and every stream of the reference layout).
    #[default]
    T5Xxl,
    /// `umt5_xxl`: a UMT5 encoder's, in the cosmos-predict2.5 layout.
    Umt5Xxl,
}

impl EmbeddingName {
    /// Every name.
    pub const ALL: [EmbeddingName; 2] = [EmbeddingName::T5Xxl, EmbeddingName::Umt5Xxl];

    /// The directory and `data_keys` entry.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddingName::T5Xxl => "t5_xxl",
            EmbeddingName::Umt5Xxl => "umt5_xxl",
        }
    }

    /// The name whose directory is `name`.
    pub fn from_name(name: &str) -> Option<EmbeddingName> {
        EmbeddingName::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The names of one dataset's streams, and every path that follows from them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamNames {
    /// The embedding stream's name.
    pub embedding: EmbeddingName,
}

impl StreamNames {
    /// The reference's names: `video`, `t5_xxl`, `metas`.
    pub const REFERENCE: StreamNames = StreamNames {
        embedding: EmbeddingName::T5Xxl,
    };

    /// The names of a dataset whose embedding stream is called `name` (`None`: another
    /// name).
    pub fn with_embedding(name: &str) -> Option<StreamNames> {
        EmbeddingName::from_name(name).map(|embedding| StreamNames { embedding })
    }

    /// The directory name and `data_keys` entry of `stream`.
    pub fn name(self, stream: Stream) -> &'static str {
        match stream {
            Stream::T5Xxl => self.embedding.name(),
            other => other.name(),
        }
    }

    /// The stream whose directory is `dir`, under these names.
    pub fn stream(self, dir: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|&s| self.name(s) == dir)
    }

    /// `wdinfo.json`'s `data_keys`: the stream names in order.
    pub fn data_keys(self) -> [&'static str; STREAM_COUNT] {
        Stream::ALL.map(|s| self.name(s))
    }

    /// `<bin>/<stream>`: the directory of a bin's tars of one stream, relative to the
    /// version.
    pub fn stream_dir(self, bin: &str, stream: Stream) -> String {
        format!("{bin}/{}", self.name(stream))
    }

    /// `<bin>/<stream>/<tar>` (`tar`: `part_NNNNNN/NNNNNN.tar`), relative to the version.
    pub fn tar_rel(self, bin: &str, stream: Stream, tar: &str) -> String {
        format!("{}/{tar}", self.stream_dir(bin, stream))
    }

    /// Final location of one stream's tar of a triple under `version_dir`.
    pub fn tar_path(self, version_dir: &Location, tar: &TarId, stream: Stream) -> Location {
        version_dir.join(&self.tar_rel(&tar.bin, stream, &tar.rel_path()))
    }

    /// `<bin>/<stream>/shardindex.json`, relative to the version.
    pub fn shardindex_rel(self, bin: &str, stream: Stream) -> String {
        shardindex_in(&self.stream_dir(bin, stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_names_are_the_streams_own() {
        let r = StreamNames::REFERENCE;
        assert_eq!(r, StreamNames::default());
        assert_eq!(r.data_keys(), Stream::ALL.map(Stream::name));
        assert_eq!(r.data_keys(), ["video", "t5_xxl", "metas"]);
        for s in Stream::ALL {
            assert_eq!(r.stream(s.name()), Some(s));
        }
        assert_eq!(r.stream("umt5_xxl"), None);
    }

    #[test]
    fn umt5_renames_the_embedding_stream_only() {
        let u = StreamNames::with_embedding("umt5_xxl").unwrap();
        assert_eq!(u.embedding, EmbeddingName::Umt5Xxl);
        assert_eq!(u.data_keys(), ["video", "umt5_xxl", "metas"]);
        assert_eq!(u.stream("umt5_xxl"), Some(Stream::T5Xxl));
        assert_eq!(u.stream("t5_xxl"), None);
        assert_eq!(u.stream("video"), Some(Stream::Video));
        let id = TarId {
            bin_order: 0,
            bin: "r/a".into(),
            part: 1,
            tar: 2,
        };
        let root = Location::Local("/o/v".into());
        assert_eq!(
            u.tar_path(&root, &id, Stream::T5Xxl),
            root.join("r/a/umt5_xxl/part_000001/000002.tar")
        );
        assert_eq!(
            u.tar_path(&root, &id, Stream::Metas),
            root.join("r/a/metas/part_000001/000002.tar")
        );
        assert_eq!(
            u.shardindex_rel("r/a", Stream::T5Xxl),
            "r/a/umt5_xxl/shardindex.json"
        );
        assert_eq!(StreamNames::with_embedding("t5"), None);
        for e in EmbeddingName::ALL {
            assert_eq!(EmbeddingName::from_name(e.name()), Some(e));
        }
    }
}
