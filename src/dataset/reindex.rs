//! `shardflow index DATASET`: the indexes `--index` writes at shard time, for a dataset that
//! has none (also one written by the reference): every tar is read once, tars in parallel,
//! local or on an object store (objects stream in ranged reads). The same read hashes every
//! tar: a dataset without a `SHA256SUMS` manifest (written before checksums were kept, or by
//! the reference) gets one.

use std::collections::BTreeMap;

use crate::config::Indexes;
use crate::dataset::index::{wids_index_json, DaliIndex, WidsShard};
use crate::dataset::layout::Layout;
use crate::dataset::par_map;
use crate::dataset::read::read_tar;
use crate::error::ShardError;
use crate::formats::sha256sums::{render, Entry, SHA256SUMS};
use crate::layout::Stream;
use crate::storage::{Location, Storage};

/// What `index` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexReport {
    /// Tars read.
    pub tars: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Samples found (in the `video` tars).
    pub samples: u64,
    /// DALI indexes written.
    pub dali_files: u64,
    /// wids shard indexes written.
    pub wids_files: u64,
    /// `SHA256SUMS` was written (the dataset had none).
    pub sha256sums: bool,
}

/// The DALI index of one tar, read through `storage` (once, to its end), its size and its
/// SHA-256.
pub fn index_tar(
    storage: &Storage,
    tar: &Location,
) -> Result<(DaliIndex, u64, String), ShardError> {
    let r = read_tar(storage, tar);
    match (r.error, r.sha256) {
        (None, Some(sha256)) => Ok((r.dali, r.bytes, sha256)),
        (e, _) => Err(ShardError::BadFile {
            location: tar.to_string(),
            message: format!("not a readable tar: {}", e.unwrap_or_default()),
        }),
    }
}

/// Writes the indexes of every tar below `root`.
pub fn index_dataset(
    storage: &Storage,
    root: &Location,
    which: Indexes,
    threads: usize,
) -> Result<IndexReport, ShardError> {
    let layout = Layout::discover(storage, root)?;
    let mut jobs: Vec<(String, Stream, String)> = Vec::new();
    for (bin, tars) in &layout.bins {
        for (tar, sizes) in tars {
            for (k, size) in sizes.iter() {
                if size.is_some() {
                    jobs.push((bin.clone(), k, tar.clone()));
                }
            }
        }
    }
    let results = par_map(&jobs, threads, |(bin, k, tar)| -> Result<_, ShardError> {
        let loc = layout.triple(root, bin, tar).location(*k);
        let (index, size, sha256) = index_tar(storage, &loc)?;
        if which.dali {
            let at = crate::layout::idx_location(&loc).map_err(|message| ShardError::BadFile {
                location: loc.to_string(),
                message,
            })?;
            storage.put(&at, index.to_text().as_bytes())?;
        }
        Ok((index.samples() as u64, size, sha256))
    });
    let mut report = IndexReport::default();
    let mut wids: BTreeMap<(String, Stream), Vec<WidsShard>> = BTreeMap::new();
    let mut sums = Vec::new();
    for ((bin, k, tar), r) in jobs.iter().zip(results) {
        let (samples, size, sha256) = r?;
        sums.push(Entry {
            path: layout.names.tar_rel(bin, *k, tar),
            sha256,
        });
        report.tars += 1;
        report.bytes += size;
        if *k == Stream::Video {
            report.samples += samples;
        }
        report.dali_files += which.dali as u64;
        wids.entry((bin.clone(), *k)).or_default().push(WidsShard {
            url: tar.clone(),
            nsamples: samples,
            filesize: size,
        });
    }
    if which.wids {
        for ((bin, k), shards) in wids {
            let at = root.join(&layout.names.shardindex_rel(&bin, k));
            storage.put(&at, wids_index_json(shards).as_bytes())?;
            report.wids_files += 1;
        }
    }
    // an existing manifest is left alone: rewritten from the tars as they are now, it would
    // hide a tar damaged since (`verify --checksums` finds that)
    let manifest = root.join(SHA256SUMS);
    let present = match storage.size(&manifest) {
        Ok(_) => true,
        Err(e) if e.not_found => false,
        Err(e) => return Err(e.into()),
    };
    if !present {
        storage.put(&manifest, render(&sums).as_bytes())?;
        report.sha256sums = true;
    }
    Ok(report)
}
