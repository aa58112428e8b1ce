//! The tars of a written dataset (`<output>/<version>`), found by listing it: every
//! `<bin>/<video|t5_xxl|umt5_xxl|metas>/part_NNNNNN/NNNNNN.tar`, local or on an object
//! store.

use std::collections::BTreeMap;

use crate::error::ShardError;
use crate::layout::{EmbeddingName, PerStream, Stream, StreamNames};
use crate::storage::{Location, Storage};

/// A dataset's files as listed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Per bin path, per tar (`part_NNNNNN/NNNNNN.tar`), the size of each stream's tar
    /// (`None`: missing).
    pub bins: BTreeMap<String, BTreeMap<String, PerStream<Option<u64>>>>,
    /// Every other file, with its size, by path relative to the dataset.
    pub others: BTreeMap<String, u64>,
    /// The stream names its directories have (the reference's when it has no embedding
    /// tars).
    pub names: StreamNames,
    /// Whether an embedding tar was found, so that [`Layout::names`] comes from the listing.
    pub embedding_seen: bool,
}

/// The stream a tar's directory names, and the embedding stream's name when it is that one.
fn stream_of_dir(dir: &str) -> Option<(Stream, Option<EmbeddingName>)> {
    match EmbeddingName::from_name(dir) {
        Some(e) => Some((Stream::T5Xxl, Some(e))),
        None => [Stream::Video, Stream::Metas]
            .into_iter()
            .find(|s| s.name() == dir)
            .map(|s| (s, None)),
    }
}

/// Where one tar triple of a dataset lies.
#[derive(Clone, Copy, Debug)]
pub struct TripleAt<'a> {
    /// The dataset (version directory).
    pub root: &'a Location,
    /// Its stream names.
    pub names: StreamNames,
    /// The bin path.
    pub bin: &'a str,
    /// `part_NNNNNN/NNNNNN.tar`.
    pub tar: &'a str,
}

impl TripleAt<'_> {
    /// `<bin>/<stream>/<tar>`, relative to the dataset: how reports name the tar.
    pub fn rel(&self, stream: Stream) -> String {
        self.names.tar_rel(self.bin, stream, self.tar)
    }

    /// The location of one stream's tar.
    pub fn location(&self, stream: Stream) -> Location {
        self.root.join(&self.rel(stream))
    }
}

fn is_tar_path(part: &str, tar: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    part.strip_prefix("part_").is_some_and(|p| digits(p, 6))
        && tar.strip_suffix(".tar").is_some_and(|t| digits(t, 6))
}

impl Layout {
    /// Lists `root`.
    pub fn discover(storage: &Storage, root: &Location) -> Result<Layout, ShardError> {
        let listed = storage.list(root)?;
        let mut out = Layout::default();
        let mut embedding: Option<EmbeddingName> = None;
        for l in listed {
            if let Some(e) = l.error {
                return Err(ShardError::BadFile {
                    location: root.join(&l.rel).to_string(),
                    message: e,
                });
            }
            let parts: Vec<&str> = l.rel.split('/').collect();
            let n = parts.len();
            let stream = (n >= 4).then(|| stream_of_dir(parts[n - 3])).flatten();
            match stream {
                Some((k, name)) if is_tar_path(parts[n - 2], parts[n - 1]) => {
                    if let Some(name) = name {
                        match embedding {
                            Some(seen) if seen != name => {
                                // one trainer's `embedding_type` reads one of them: never
                                // guess which
                                return Err(ShardError::BadFile {
                                    location: root.join(&l.rel).to_string(),
                                    message: format!(
                                        "a {} tar in a dataset that also has {} tars: a dataset has one embedding stream",
                                        name.name(),
                                        seen.name()
                                    ),
                                });
                            }
                            _ => embedding = Some(name),
                        }
                    }
                    let bin = parts[..n - 3].join("/");
                    let tar = format!("{}/{}", parts[n - 2], parts[n - 1]);
                    out.bins.entry(bin).or_default().entry(tar).or_default()[k] = Some(l.size);
                }
                _ => {
                    out.others.insert(l.rel, l.size);
                }
            }
        }
        out.embedding_seen = embedding.is_some();
        out.names = StreamNames {
            embedding: embedding.unwrap_or_default(),
        };
        Ok(out)
    }

    /// Tar triple `tar` (`part_NNNNNN/NNNNNN.tar`) of `bin` of this dataset at `root`.
    pub fn triple<'a>(&self, root: &'a Location, bin: &'a str, tar: &'a str) -> TripleAt<'a> {
        TripleAt {
            root,
            names: self.names,
            bin,
            tar,
        }
    }

    /// Bytes of all tars.
    pub fn tar_bytes(&self) -> u64 {
        self.bins
            .values()
            .flat_map(|t| t.values())
            .flat_map(|s| s.values().flatten())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    #[test]
    fn finds_tars_by_stream_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for (f, n) in [
            ("r/a/video/part_000000/000000.tar", 3),
            ("r/a/metas/part_000000/000000.tar", 2),
            ("r/a/video/part_000000/000000.idx", 1),
            ("r/a/wdinfo.json", 1),
            ("wdinfo_list.csv", 1),
            ("x/video/part_1/000000.tar", 1),
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![0u8; n]).unwrap();
        }
        let st = Storage::new(StorageOptions::default());
        let l = Layout::discover(&st, &Location::Local(dir.path().to_path_buf())).unwrap();
        assert_eq!(
            l.bins["r/a"]["part_000000/000000.tar"],
            PerStream([Some(3), None, Some(2)])
        );
        assert_eq!(l.bins.len(), 1);
        assert_eq!(l.tar_bytes(), 5);
        assert!(l.others.contains_key("x/video/part_1/000000.tar"));
        assert!(l.others.contains_key("r/a/video/part_000000/000000.idx"));
        assert_eq!(l.names, StreamNames::REFERENCE);
        assert!(!l.embedding_seen);
    }

    #[test]
    fn finds_the_embedding_stream_by_either_name_but_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let put = |f: &str| {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, [0u8; 4]).unwrap();
        };
        put("r/a/umt5_xxl/part_000000/000000.tar");
        put("r/a/video/part_000000/000000.tar");
        let st = Storage::new(StorageOptions::default());
        let root = Location::Local(dir.path().to_path_buf());
        let l = Layout::discover(&st, &root).unwrap();
        assert_eq!(l.names.embedding, EmbeddingName::Umt5Xxl);
        assert!(l.embedding_seen);
        assert_eq!(
            l.bins["r/a"]["part_000000/000000.tar"],
            PerStream([Some(4), Some(4), None])
        );
        let t = l.triple(&root, "r/a", "part_000000/000000.tar");
        assert_eq!(t.rel(Stream::T5Xxl), "r/a/umt5_xxl/part_000000/000000.tar");
        assert_eq!(
            t.location(Stream::Metas),
            root.join("r/a/metas/part_000000/000000.tar")
        );
        put("r/b/t5_xxl/part_000000/000000.tar");
        let e = Layout::discover(&st, &root).unwrap_err().to_string();
        assert!(e.contains("one embedding stream"), "{e}");
        assert!(e.contains("r/b/t5_xxl/part_000000/000000.tar"), "{e}");
    }
}
