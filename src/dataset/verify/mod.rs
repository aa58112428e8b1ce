//! `shardflow verify DATASET`: everything a training job assumes of a dataset, checked before
//! it finds out hours in. Every problem is reported with the path it concerns:
//!
//! - every `wdinfo_list.csv` row names a bin's `wdinfo.json`, and every bin with tars has a row;
//! - `wdinfo.json` parses, its `data_keys` are the three streams, its `data_list` is exactly the
//!   bin's tars, and `total_key_count` is the number of samples in them;
//! - each triple exists in all three streams with the same keys in the same order, no key
//!   twice, the right extension per stream, and every tar reads to its end-of-archive marker;
//! - each `.json` parses (as Python's `json` reads it) and its `span_uuid` is the key; each
//!   `.pickle` decodes to a list of `(L, d)` float16 arrays, one per captioned window, with the
//!   same `d` throughout;
//! - DALI `.idx` and wids `shardindex.json` files, where present, match the tars;
//! - the dataset is finished ([`crate::dataset::complete`]): a shardflow job that is still
//!   writing it, or was interrupted, is a problem.
//!
//! With `--checksums`, [`check_checksums`] hashes every tar against the version's
//! `SHA256SUMS`.
//!
//! Re-embedding sampled windows with the model is done by the command, over [`StoredWindow`]s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dataset::layout::Layout;
use crate::dataset::par_map;
use crate::error::ShardError;
use crate::layout::{wdinfo_dir, wdinfo_rel, PerStream, StreamNames, WDINFO_LIST};
use crate::storage::{Location, Storage};
use crate::text::shown;

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// The file (relative to the dataset) or `sample` path it concerns.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A captioned window, for re-embedding checks: where its embedding is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWindow {
    /// The bin.
    pub bin: String,
    /// The tar (`part_NNNNNN/NNNNNN.tar`).
    pub tar: String,
    /// The sample key.
    pub key: String,
    /// Index among the sample's embedded windows.
    pub window: usize,
    /// The caption.
    pub caption: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Bins checked.
    pub bins: u64,
    /// Tar triples checked.
    pub triples: u64,
    /// Samples checked.
    pub samples: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Every problem, sorted by path.
    pub problems: Vec<Problem>,
    /// Windows sampled for re-embedding ([`VerifyOptions::sample_windows`]).
    #[serde(skip)]
    pub windows: Vec<StoredWindow>,
    /// The samples' layout when it is not the reference's (e.g. `cosmos-predict2.5`): left
    /// out of reports of reference datasets, which read as they always have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// The embedding stream's name when it is not `t5_xxl` (`umt5_xxl`): left out of reports
    /// of datasets with the reference's names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_stream: Option<String>,
    /// The stream names the dataset's directories have.
    #[serde(skip)]
    pub names: StreamNames,
    /// Tars whose SHA-256 was checked against `SHA256SUMS` (`--checksums`); left out of
    /// reports without that check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksums_checked: Option<u64>,
    /// With [`VerifyOptions::checksums`], the SHA-256 of every tar that read to its end, by
    /// path relative to the dataset.
    #[serde(skip)]
    pub sha256: BTreeMap<String, String>,
}

/// Options of a verification.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Caption field prefix (`<algorithm>_caption`).
    pub captioning_algorithm: String,
    /// Threads reading tars.
    pub threads: usize,
    /// Pick this many captioned windows at random (reservoir sampling while reading, so
    /// memory stays small) for re-embedding checks; 0: none.
    pub sample_windows: usize,
    /// Seed of that sample.
    pub seed: u64,
    /// Hash every tar on the same read, into [`VerifyReport::sha256`], for
    /// [`check_checksums`].
    pub checksums: bool,
}

pub(crate) struct TripleResult {
    pub(crate) problems: Vec<Problem>,
    pub(crate) samples: u64,
    pub(crate) bytes: u64,
    pub(crate) d_model: BTreeSet<usize>,
    pub(crate) windows: Vec<StoredWindow>,
    /// The layouts of its samples (see [`predict25`]).
    pub(crate) layouts: BTreeSet<crate::layout::OutputLayout>,
    /// Path (relative to the dataset) and SHA-256 of each of its tars that read to the end
    /// ([`VerifyOptions::checksums`]).
    pub(crate) sha256: Vec<(String, String)>,
}

/// Verifies the dataset at `root`.
pub fn verify(
    storage: &Storage,
    root: &Location,
    opts: &VerifyOptions,
) -> Result<VerifyReport, ShardError> {
    let state = crate::dataset::complete::check(storage, root)?;
    let mut layout = Layout::discover(storage, root)?;
    // the layout and stream names the job recorded in its journal (none in a dataset the
    // reference wrote)
    let job = crate::journal::Journal::new(storage.clone(), root.clone()).read_job();
    if !layout.embedding_seen {
        // no embedding tar names the stream: the job's record does, where there is one
        let recorded = match &job {
            Ok(Some(j)) => crate::journal::stream_names_of(&j.options),
            _ => None,
        };
        if let Some(names) = recorded {
            layout.names = names;
        }
    }
    let mut report = VerifyReport::default();
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| {
        problems.push(Problem {
            path: path.to_string(),
            message,
        })
    };
    if let Some(message) = state.message(root) {
        // also checked, and reported first, by the command
        problem(".", message);
    }

    // wdinfo_list.csv → bins
    let csv_bins = match storage.read(&root.join(WDINFO_LIST)) {
        Err(e) => {
            problem(WDINFO_LIST, format!("cannot be read: {}", e.message));
            BTreeSet::new()
        }
        Ok(b) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let mut bins = BTreeSet::new();
            for (i, row) in text.split("\r\n").filter(|r| !r.is_empty()).enumerate() {
                let dir = wdinfo_dir(row).unwrap_or(row);
                let known = layout
                    .bins
                    .keys()
                    .chain(layout.others.keys())
                    .find(|b| dir == b.as_str() || dir.ends_with(&format!("/{b}")));
                match known {
                    Some(b) if layout.others.contains_key(&wdinfo_rel(b)) => {
                        bins.insert(b.clone());
                    }
                    _ => problem(
                        WDINFO_LIST,
                        format!(
                            "row {}: {} is not the wdinfo.json of a bin of this dataset",
                            i + 1,
                            shown(row)
                        ),
                    ),
                }
            }
            bins
        }
    };
    for bin in layout.bins.keys() {
        if !csv_bins.contains(bin) {
            problem(WDINFO_LIST, format!("has no row for bin {bin}"));
        }
    }

    // the triples, in parallel
    let jobs: Vec<(&String, &String, &PerStream<Option<u64>>)> = layout
        .bins
        .iter()
        .flat_map(|(bin, tars)| tars.iter().map(move |(t, s)| (bin, t, s)))
        .collect();
    let wids_indexes = WidsIndexes::default();
    let results = par_map(&jobs, opts.threads, |(bin, tar, sizes)| {
        check_triple(storage, root, &layout, bin, tar, sizes, opts, &wids_indexes)
    });
    let mut samples_per_bin: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut seen_windows, mut rng) = (0u64, opts.seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let mut d_models = BTreeSet::new();
    let mut layouts = BTreeSet::new();
    for ((bin, _, _), r) in jobs.iter().zip(results) {
        layouts.extend(r.layouts);
        *samples_per_bin.entry(bin.as_str()).or_default() += r.samples;
        report.samples += r.samples;
        report.bytes += r.bytes;
        report.triples += 1;
        d_models.extend(r.d_model);
        problems.extend(r.problems);
        report.sha256.extend(r.sha256);
        for w in r.windows {
            // reservoir sampling (Algorithm R)
            seen_windows += 1;
            if report.windows.len() < opts.sample_windows {
                report.windows.push(w);
            } else {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let j = (rng % seen_windows) as usize;
                if j < opts.sample_windows {
                    report.windows[j] = w;
                }
            }
        }
    }
    if layouts.len() > 1 {
        let names: Vec<&str> = layouts.iter().map(|l| l.name()).collect();
        problems.push(Problem {
            path: ".".into(),
            message: format!(
                "samples of different layouts in one dataset ({}): a trainer reads one",
                names.join(", ")
            ),
        });
    }
    report.names = layout.names;
    if layout.names != StreamNames::REFERENCE {
        report.embedding_stream = Some(layout.names.embedding.name().to_string());
        if layouts.contains(&crate::layout::OutputLayout::Reference) {
            problems.push(Problem {
                path: ".".into(),
                message: format!(
                    "samples in the reference layout under {}: its trainer reads {}",
                    layout.names.embedding.name(),
                    StreamNames::REFERENCE.embedding.name()
                ),
            });
        }
    }
    if let Ok(Some(job)) = &job {
        let recorded = crate::journal::stream_names_of(&job.options);
        // a dataset without embedding tars has no name to compare
        if recorded != Some(layout.names) && layout.embedding_seen {
            problems.push(Problem {
                path: format!("{}/job.json", crate::journal::JOB_DIR),
                message: format!(
                    "the job wrote the embedding stream as {}, but the dataset's is {}",
                    job.options
                        .get("embedding_stream")
                        .and_then(|v| v.as_str())
                        .unwrap_or(StreamNames::REFERENCE.embedding.name()),
                    layout.names.embedding.name()
                ),
            });
        }
    }
    if let (Ok(Some(job)), [found]) = (job, &layouts.iter().collect::<Vec<_>>()[..]) {
        let recorded = job
            .options
            .get("layout")
            .and_then(|v| v.as_str())
            .unwrap_or(crate::layout::OutputLayout::Reference.name());
        if recorded != found.name() {
            problems.push(Problem {
                path: format!("{}/job.json", crate::journal::JOB_DIR),
                message: format!(
                    "the job wrote the {recorded} layout, but the samples are in the {found} layout"
                ),
            });
        }
    }
    report.layout = match layouts.first() {
        Some(l) if layouts.len() == 1 && *l != crate::layout::OutputLayout::Reference => {
            Some(l.name().to_string())
        }
        _ => None,
    };
    if d_models.len() > 1 {
        problems.push(Problem {
            path: ".".into(),
            message: format!("embeddings of different widths in one dataset: {d_models:?}"),
        });
    }

    // wdinfo.json per bin
    for (bin, tars) in &layout.bins {
        report.bins += 1;
        let path = wdinfo_rel(bin);
        let info = match storage.read(&root.join(&path)) {
            Ok(b) => b,
            Err(e) => {
                problems.push(Problem {
                    path,
                    message: format!("cannot be read: {}", e.message),
                });
                continue;
            }
        };
        let mut bad = |m: String| {
            problems.push(Problem {
                path: path.clone(),
                message: m,
            })
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&info) else {
            bad("not valid JSON".into());
            continue;
        };
        let data_keys = layout.names.data_keys();
        if v["data_keys"] != serde_json::json!(data_keys) {
            bad(format!(
                "data_keys is {}, not {data_keys:?}",
                shown(&v["data_keys"].to_string()),
            ));
        }
        let listed: BTreeSet<String> = v["data_list"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for t in listed.iter().filter(|t| !tars.contains_key(*t)) {
            bad(format!(
                "data_list names {}, which does not exist",
                shown(t)
            ));
        }
        for t in tars.keys().filter(|t| !listed.contains(*t)) {
            bad(format!("{t} exists but is not in data_list"));
        }
        let counted = samples_per_bin.get(bin.as_str()).copied().unwrap_or(0);
        if v["total_key_count"].as_u64() != Some(counted) {
            bad(format!(
                "total_key_count is {}, but its tars hold {counted} samples",
                shown(&v["total_key_count"].to_string())
            ));
        }
    }
    problems.sort();
    // a file shared by several tars (a stream's shardindex.json) is reported once
    problems.dedup();
    report.problems = problems;
    Ok(report)
}

mod checksums;
mod predict25;
mod reembed;
mod triple;

pub use checksums::{check_checksums, ChecksumCheck};
pub use reembed::reembed_sample;
use triple::{check_triple, WidsIndexes};
