//! The shape of a written dataset, in one place: its streams ([`Stream`]: name, member
//! extension), a value per stream ([`PerStream`]), what a dataset calls them
//! ([`StreamNames`]: where each stream's tar of a triple lies, `wdinfo.json`'s `data_keys`,
//! the wids indexes), its members' names ([`member_name`]) and the other files beside the
//! tars ([`idx_path`], [`wdinfo_rel`], [`WDINFO_LIST`]).
//!
//! Every `<bin>/<stream>/part_NNNNNN/NNNNNN.tar` of a version comes from here; to add a
//! stream, add a variant to [`Stream`] (and to [`Stream::ALL`], its name and extension) and
//! widen [`PerStream`]. A bottom-layer module: it imports only specs and storage locations.

mod names;

pub use names::{EmbeddingName, StreamNames};

use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

use crate::storage::Location;

/// The identity of a tar triple: the key of the exchange in front of the writers.
#[derive(Default, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TarId {
    /// Order of the bin's first appearance in the listing.
    pub bin_order: u32,
    /// The bin path, e.g. `resolution_720/aspect_ratio_16_9/frames_0_120`.
    pub bin: String,
    /// Part index.
    pub part: u32,
    /// Tar index within the part.
    pub tar: u32,
}

impl TarId {
    /// `part_{p:06}/{t:06}.tar`.
    pub fn rel_path(&self) -> String {
        crate::spec::tar_rel_path(self.part, self.tar)
    }
}

/// Number of streams.
pub const STREAM_COUNT: usize = 3;

/// One stream of the dataset: a tar per triple, one member per sample. Ordered as
/// [`Stream::ALL`]; serialized (for the dataflows' exchanges only, no file holds one) as its
/// [`name`](Stream::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The clip's mp4.
    Video,
    /// The caption embeddings (a pickled list of float16 arrays, or of one dict per window in
    /// the cosmos-predict2.5 layout). Its directory is the trainer's `embedding_type`:
    /// `t5_xxl` here, `umt5_xxl` for a UMT5 encoder in the cosmos-predict2.5 layout
    /// ([`StreamNames`]).
    T5Xxl,
    /// The clip's metadata (`json.dumps`).
    Metas,
}

impl Stream {
    /// Every stream, in `wdinfo.json`'s `data_keys` order (the reference's).
    pub const ALL: [Stream; STREAM_COUNT] = [Stream::Video, Stream::T5Xxl, Stream::Metas];

    /// The stream's name in the reference layout: its directory and `data_keys` entry there
    /// (a dataset's own names: [`StreamNames::name`]), and its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Video => "video",
            Stream::T5Xxl => "t5_xxl",
            Stream::Metas => "metas",
        }
    }

    /// The extension of the stream's tar members.
    pub fn ext(self) -> &'static str {
        match self {
            Stream::Video => "mp4",
            Stream::T5Xxl => "pickle",
            Stream::Metas => "json",
        }
    }

    /// Position in [`Stream::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stream at position `i` of [`Stream::ALL`].
    pub fn from_index(i: usize) -> Option<Stream> {
        Stream::ALL.get(i).copied()
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the members of a dataset hold: which trainer reads it unchanged. The tars, their
/// paths and the summaries are the same in every layout; the `.json` and `.pickle` members
/// differ.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum OutputLayout {
    /// The reference's (cosmos-curate v1.0.0): the input metadata as is, and a pickled list
    /// with one float16 array per captioned window.
    #[default]
    Reference,
    /// What NVIDIA's cosmos-predict2.5 trainer reads: the metadata with `nb_frames` and
    /// `t2w_windows` added, and a pickled list with one dict per window
    /// (`{"t2w_qwen2p5_7b": array}`, `{}` for a window without a caption).
    CosmosPredict25,
}

impl OutputLayout {
    /// Every layout, by name.
    pub const ALL: [OutputLayout; 2] = [OutputLayout::Reference, OutputLayout::CosmosPredict25];

    /// Its name on the command line and in the journal.
    pub fn name(self) -> &'static str {
        match self {
            OutputLayout::Reference => "reference",
            OutputLayout::CosmosPredict25 => "cosmos-predict2.5",
        }
    }

    /// The layout called `name`; the error lists the names.
    pub fn parse(name: &str) -> Result<OutputLayout, String> {
        OutputLayout::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown layout {name:?}: expected {}",
                    OutputLayout::ALL.map(OutputLayout::name).join(" or ")
                )
            })
    }

    /// The stream names of a dataset in this layout written by an `encoder`-family model:
    /// the reference's trainer reads `t5_xxl` whatever the encoder, so only the
    /// cosmos-predict2.5 layout names the embedding stream after the encoder (its trainer
    /// takes `t5_xxl` or `umt5_xxl` as `embedding_type`).
    pub fn stream_names(self, encoder: EmbeddingName) -> StreamNames {
        match self {
            OutputLayout::Reference => StreamNames::REFERENCE,
            OutputLayout::CosmosPredict25 => StreamNames { embedding: encoder },
        }
    }
}

impl std::fmt::Display for OutputLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One value per stream, in [`Stream::ALL`] order. Serialized as a plain array of the values
/// (journal records keep the shape they had as `[T; 3]`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PerStream<T>(pub [T; STREAM_COUNT]);

impl<T> PerStream<T> {
    /// The value of each stream from `f`.
    pub fn from_fn(f: impl FnMut(Stream) -> T) -> Self {
        PerStream(Stream::ALL.map(f))
    }

    /// Applies `f` to each value.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerStream<U> {
        PerStream(self.0.map(f))
    }

    /// Each stream with its value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Stream, &T)> {
        Stream::ALL.into_iter().zip(self.0.iter())
    }

    /// Each stream with its value, mutable, in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Stream, &mut T)> {
        Stream::ALL.into_iter().zip(self.0.iter_mut())
    }

    /// The values, in order.
    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T> Index<Stream> for PerStream<T> {
    type Output = T;
    fn index(&self, s: Stream) -> &T {
        &self.0[s.index()]
    }
}

impl<T> IndexMut<Stream> for PerStream<T> {
    fn index_mut(&mut self, s: Stream) -> &mut T {
        &mut self.0[s.index()]
    }
}

impl<T> IntoIterator for PerStream<T> {
    type Item = T;
    type IntoIter = std::array::IntoIter<T, STREAM_COUNT>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a PerStream<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `<key>.<ext>`: the name of sample `key`'s member in the tar of `stream`.
pub fn member_name(key: &str, stream: Stream) -> String {
    format!("{key}.{}", stream.ext())
}

/// The sample key of a member of the tar of `stream`, or `None` when `name` is not one of
/// that stream's members (its extension differs).
pub fn member_key(name: &str, stream: Stream) -> Option<&str> {
    name.strip_suffix(stream.ext())?.strip_suffix('.')
}

/// Where a tar's DALI index lies, beside it: `000000.tar` → `000000.idx` (works on relative
/// paths and on locations' text alike).
pub fn idx_path(tar: &str) -> String {
    format!("{}.idx", tar.strip_suffix(".tar").unwrap_or(tar))
}

/// The location of the DALI index beside the tar at `tar` (see [`idx_path`]).
pub fn idx_location(tar: &Location) -> Result<Location, String> {
    Location::parse(&idx_path(&tar.to_string()))
}

/// File name of a bin's summary.
pub const WDINFO: &str = "wdinfo.json";

/// File name of the version's list of bin summaries, at the version's root.
pub const WDINFO_LIST: &str = "wdinfo_list.csv";

/// File name of a wids index, one per bin and stream.
pub const SHARDINDEX: &str = "shardindex.json";

/// `<bin>/wdinfo.json`, relative to the version.
pub fn wdinfo_rel(bin: &str) -> String {
    format!("{bin}/{WDINFO}")
}

/// The directory a `wdinfo_list.csv` row names: the row without its `/wdinfo.json`, or `None`
/// when it does not end so.
pub fn wdinfo_dir(row: &str) -> Option<&str> {
    row.strip_suffix(WDINFO)?.strip_suffix('/')
}

/// `<dir>/shardindex.json`, for `dir` a stream directory (`<bin>/<stream>`, [`stream_dir`]).
pub fn shardindex_in(dir: &str) -> String {
    format!("{dir}/{SHARDINDEX}")
}

#[cfg(test)]
mod tests;
