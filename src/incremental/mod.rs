//! Incremental re-sharding: pay only for what changed between two annotation versions.
//!
//! - [`Changes`] is what to do, found by a differential dataflow (`dataflows::changes`, run
//!   through a [`ChangeComputation`]). The new version's clips are a collection keyed by
//!   clip; their bin and tar assignment is derived from it (a `reduce` per bin runs the
//!   reference's grouping, [`group_bin`], SPEC §4), each member tar gets a content hash
//!   ([`ContentHasher`]), and the difference with the old version's tars (from its journal)
//!   is what must be written; every other tar is copied. The captions no earlier version
//!   embedded are the only ones to encode. [`changes_oracle`] computes the same by plain
//!   iteration.
//! - [`base`] loads and checks the earlier version (`--from-version`), or the same version's
//!   earlier output (`--append`).
//! - [`plan`] turns the plan of the new version into what to copy, write and encode.
//! - [`reuse`] serves earlier embeddings from the old version's `t5_xxl` tars.

pub mod base;
pub mod plan;
pub mod reuse;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::JobError;
use crate::layout::{PerStream, Stream};
use crate::spec::group_tars_dropping;

/// One member tar: `(bin, stream, part, tar)`. Ordered as before by stream position
/// ([`Stream`]'s `Ord` follows [`Stream::ALL`]).
pub type TarFile = (String, Stream, u32, u32);

/// A triple: `(bin, part, tar)`.
pub type TripleKey = (String, u32, u32);

/// A triple as derived from its clips: its sample keys in order and member content hashes.
pub type DerivedTriple = (TripleKey, (Vec<String>, PerStream<u64>));

/// FNV-1a over `bytes`, continuing from `h`.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// What a sample contributes to the bytes of each member tar (the tar mtime, the model and
/// the options are the same for the whole job and checked separately).
#[derive(Clone, Copy, Debug)]
pub struct SampleFacts<'a> {
    /// Sample key.
    pub key: &'a str,
    /// Where the mp4 is read from.
    pub clip_path: &'a str,
    /// Its size.
    pub clip_size: u64,
    /// Its change stamp ([`crate::storage::FileStat::stamp`]): a clip replaced in place
    /// with one of the same size still changes the `video` hash.
    pub clip_stamp: u64,
    /// Hash of the metadata file (the `.json` member is a function of it).
    pub meta_hash: u64,
    /// Caption hashes of the embedded windows (the `.pickle` is a function of them).
    pub caption_hashes: &'a [u64],
}

/// Content hashes of the three member tars of a triple, over its samples in order: two
/// triples with equal hashes hold the same bytes (same job mtime, model and options).
#[derive(Clone, Copy, Debug)]
pub struct ContentHasher {
    h: PerStream<u64>,
}

impl Default for ContentHasher {
    fn default() -> Self {
        ContentHasher {
            h: PerStream::from_fn(|_| 0xcbf29ce484222325),
        }
    }
}

impl ContentHasher {
    /// Adds the next sample.
    pub fn add(&mut self, s: &SampleFacts) {
        let field = |h: u64, b: &[u8]| fnv(fnv(h, &(b.len() as u64).to_le_bytes()), b);
        // each stream's hash covers exactly what its member's bytes are a function of
        for (stream, h) in self.h.iter_mut() {
            *h = field(*h, s.key.as_bytes());
            match stream {
                Stream::Video => {
                    *h = field(*h, s.clip_path.as_bytes());
                    *h = field(*h, &s.clip_size.to_le_bytes());
                    *h = field(*h, &s.clip_stamp.to_le_bytes());
                }
                Stream::T5Xxl => {
                    *h = field(*h, &(s.caption_hashes.len() as u64).to_le_bytes());
                    for c in s.caption_hashes {
                        *h = fnv(*h, &c.to_le_bytes());
                    }
                }
                Stream::Metas => *h = field(*h, &s.meta_hash.to_le_bytes()),
            }
        }
    }

    /// The hashes.
    pub fn finish(&self) -> PerStream<u64> {
        self.h
    }
}

/// A clip of the new version, as the change computation sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClipFacts {
    /// Listing position (the order within a bin).
    pub seq: u64,
    /// Metadata `num_bytes` (drives grouping).
    pub num_bytes: u64,
    /// Sample key.
    pub key: String,
    /// Clip location.
    pub clip_path: String,
    /// Clip size.
    pub clip_size: u64,
    /// Clip change stamp.
    pub clip_stamp: u64,
    /// Metadata file hash.
    pub meta_hash: u64,
    /// Caption hashes of the embedded windows.
    pub caption_hashes: Vec<u64>,
}

impl ClipFacts {
    fn facts(&self) -> SampleFacts<'_> {
        SampleFacts {
            key: &self.key,
            clip_path: &self.clip_path,
            clip_size: self.clip_size,
            clip_stamp: self.clip_stamp,
            meta_hash: self.meta_hash,
            caption_hashes: &self.caption_hashes,
        }
    }
}

/// The grouping options (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grouping {
    /// Target tar size in bytes.
    pub target_tar_bytes: u64,
    /// Tars per part.
    pub max_tars_per_part: u32,
    /// A bin's last tar with fewer clips is dropped (0: never).
    pub drop_below: u32,
}

/// The old version: its member tars by content hash and the captions it embedded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OldVersion {
    /// Every member tar and its content hash.
    pub files: BTreeMap<TarFile, u64>,
    /// Hashes of the captions it embedded.
    pub captions: BTreeSet<u64>,
}

/// The difference from the old version to the new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The new version's triples as derived from its clips: their keys in order and member
    /// hashes.
    pub triples: BTreeMap<TripleKey, (Vec<String>, PerStream<u64>)>,
    /// Member tars of the new version whose contents are new or changed: they must be written.
    pub write: BTreeSet<TarFile>,
    /// Member tars of the new version that are unchanged: they can be copied.
    pub copy: BTreeSet<TarFile>,
    /// Member tars of the old version that the new one no longer has.
    pub removed: BTreeSet<TarFile>,
    /// Captions of the new version that the old one did not embed: they must be encoded.
    pub new_captions: BTreeSet<u64>,
}

/// The triples of a bin's clips (any order), grouped as the reference groups them.
pub fn group_bin(bin: &str, clips: &mut [&ClipFacts], grouping: Grouping) -> Vec<DerivedTriple> {
    clips.sort_by_key(|c| c.seq);
    let sizes: Vec<u64> = clips.iter().map(|c| c.num_bytes).collect();
    group_tars_dropping(
        &sizes,
        grouping.target_tar_bytes,
        grouping.max_tars_per_part,
        grouping.drop_below,
    )
    .into_iter()
    .map(|g| {
        let mut h = ContentHasher::default();
        let members = &clips[g.members];
        for c in members {
            h.add(&c.facts());
        }
        let keys = members.iter().map(|c| c.key.clone()).collect();
        ((bin.to_string(), g.part, g.tar), (keys, h.finish()))
    })
    .collect()
}

/// What computes the [`Changes`] from an old version to the new version's clips
/// (`(bin, clip)`, any order) on `workers` threads: the `changes` dataflow
/// (`dataflows::changes::run`), handed down by the job that runs the plan (the plan sits
/// below the dataflows), or [`changes_oracle`] in tests.
pub type ChangeComputation =
    fn(&OldVersion, &[(String, ClipFacts)], Grouping, usize) -> Result<Changes, JobError>;

impl Changes {
    /// The changes from what the change computation found, each record with its
    /// multiplicity: the derived triples, the member tars in one version only (+1 new or
    /// changed, -1 no longer there) and the captions in one version only (+1 new).
    pub fn from_updates(
        triples: impl IntoIterator<Item = (DerivedTriple, isize)>,
        files: impl IntoIterator<Item = ((TarFile, u64), isize)>,
        captions: impl IntoIterator<Item = (u64, isize)>,
    ) -> Changes {
        let mut out = Changes::default();
        for (t, diff) in triples {
            if diff > 0 {
                out.triples.insert(t.0, t.1);
            }
        }
        let mut gone = BTreeSet::new();
        for ((file, _), diff) in files {
            if diff > 0 {
                out.write.insert(file);
            } else if diff < 0 {
                gone.insert(file);
            }
        }
        let new_files: BTreeSet<TarFile> = files_of(&out.triples).map(|(f, _)| f).collect();
        out.removed = gone.difference(&new_files).cloned().collect();
        out.copy = new_files.difference(&out.write).cloned().collect();
        for (c, diff) in captions {
            if diff > 0 {
                out.new_captions.insert(c);
            }
        }
        out
    }
}

/// Member tars of triples, with their hashes.
pub fn files_of(
    triples: &BTreeMap<TripleKey, (Vec<String>, PerStream<u64>)>,
) -> impl Iterator<Item = (TarFile, u64)> + '_ {
    triples.iter().flat_map(|((bin, part, tar), (_, h))| {
        Stream::ALL.map(move |s| ((bin.clone(), s, *part, *tar), h[s]))
    })
}

/// The same differences by plain iteration and set arithmetic: the oracle of the tests.
pub fn changes_oracle(
    old: &OldVersion,
    new: &[(String, ClipFacts)],
    grouping: Grouping,
) -> Changes {
    let mut by_bin: BTreeMap<&str, Vec<&ClipFacts>> = BTreeMap::new();
    for (bin, c) in new {
        by_bin.entry(bin).or_default().push(c);
    }
    let mut out = Changes::default();
    for (bin, mut clips) in by_bin {
        out.triples.extend(group_bin(bin, &mut clips, grouping));
    }
    let files: BTreeMap<TarFile, u64> = files_of(&out.triples).collect();
    for (f, h) in &files {
        if old.files.get(f) == Some(h) {
            out.copy.insert(f.clone());
        } else {
            out.write.insert(f.clone());
        }
    }
    out.removed = old
        .files
        .keys()
        .filter(|f| !files.contains_key(*f))
        .cloned()
        .collect();
    let captions: BTreeSet<u64> = new
        .iter()
        .flat_map(|(_, c)| c.caption_hashes.iter().copied())
        .collect();
    out.new_captions = captions.difference(&old.captions).copied().collect();
    out
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
