//! Job configuration: command-line options and an optional TOML file → a validated
//! [`ShardConfig`]. Each raw option is declared once, in [`options`] (flag, key and help
//! text); the command line is laid over the file ([`Merge`]), then [`ShardConfig::resolve`]
//! fills defaults and validates, reporting every problem at once, each with its key path.

mod file;
pub mod options;
mod resolve;
mod validate;

use std::path::PathBuf;

pub use options::{ClusterSection, Merge, ShardArgs, ShardOptions, StorageSection};
pub use resolve::{check_version, default_batch_size, default_max_batch_tokens, parse_remap};

use crate::layout::{OutputLayout, StreamNames};
use crate::model::{DeviceSpec, Precision};
use crate::spec::BinSpec;
use crate::storage::{Location, StorageOptions};
use crate::text::shown_quoted;

/// A validated `shard` job.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardConfig {
    /// `<input-clip-path>`: a directory or `s3://` prefix holding `metas/<version>/` (and
    /// usually `clips/`).
    pub input: String,
    /// `<output-dataset-path>`, a directory or `s3://` prefix, as the user wrote it (it
    /// appears in `wdinfo` files).
    pub output: String,
    /// Annotation version, e.g. `v0`.
    pub version: String,
    /// Hugging Face T5 or UMT5 model directory.
    pub model_dir: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// Caption windows per encoder batch.
    pub batch_size: usize,
    /// Tokens per encoder batch.
    pub max_batch_tokens: usize,
    /// Where the encoder runs.
    pub device: DeviceSpec,
    /// The encoder's compute precision.
    pub precision: Precision,
    /// Target tar size in MiB.
    pub target_tar_size_mb: f64,
    /// Tars per part.
    pub max_tars_per_part: u32,
    /// Caption field prefix: windows hold `<algorithm>_caption`.
    pub captioning_algorithm: String,
    /// `clip_location` prefix rewrites `(from, to)`.
    pub remaps: Vec<(String, String)>,
    /// Processes of the job, with this one's index and everyone's address.
    pub cluster: Cluster,
    /// Object-store settings and S3 profiles.
    pub storage: StorageOptions,
    /// Clips must lie under one of these prefixes; empty: anywhere.
    pub allowed_clip_roots: Vec<String>,
    /// Largest fraction of rejected inputs that still exits 0.
    pub max_rejected_fraction: f64,
    /// Binning rules.
    pub bins: BinSpec,
    /// How metadata files are found.
    pub listing: Listing,
    /// Semantic dedup, when asked for.
    pub semantic_dedup: Option<SemanticDedup>,
    /// Smallest clip count of a bin's last tar (with `drop_small_shards`).
    pub min_clips_per_tar: u32,
    /// Drop a bin's last tar when it has fewer than `min_clips_per_tar` clips.
    pub drop_small_shards: bool,
    /// Write the clips even when not one window has a caption.
    pub allow_no_captions: bool,
    /// Plan in one step on worker 0 once every metadata file is read instead of as the
    /// listing goes: set for `reshard` and `--append` (they compare the whole plan with their
    /// base), and by `SHARDFLOW_PLANNER=gathered` (benchmarks comparing the two planners).
    pub gathered_plan: bool,
    /// Indexes written with the tars.
    pub index: Indexes,
    /// What the members hold (which trainer reads the dataset).
    pub layout: OutputLayout,
    /// The dataset's stream names: the embedding stream is `umt5_xxl` for a UMT5 model in
    /// the cosmos-predict2.5 layout, `t5_xxl` otherwise (read from the model's
    /// `config.json` when resolved).
    pub names: StreamNames,
    /// Where the live metrics are served (`--metrics-listen`); `None`: not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Which random-access indexes are written with the tars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indexes {
    /// A DALI `.idx` beside every tar.
    pub dali: bool,
    /// A wids `shardindex.json` per bin and stream.
    pub wids: bool,
}

impl Indexes {
    /// Parses `dali` / `wids` names.
    pub fn parse(names: &[String]) -> Result<Indexes, String> {
        let mut out = Indexes::default();
        for n in names {
            match n.as_str() {
                "dali" => out.dali = true,
                "wids" => out.wids = true,
                other => {
                    return Err(format!(
                        "unknown index {}: expected dali or wids",
                        shown_quoted(other)
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// How the metadata files of a version are found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Listing {
    /// Every file under `metas/<version>/`, recursively (the reference v1.0.0).
    #[default]
    Scan,
    /// `metas/<version>/<uuid>.json` for every clip uuid listed under a video's `clips` in
    /// `<input>/summary.json` (the later reference).
    Summary,
}

/// The semantic-dedup filter (SPEC §2 step 4).
#[derive(Clone, Debug, PartialEq)]
pub struct SemanticDedup {
    /// The dedup output: its `extraction/semdedup_pruning_tables/` holds the parquet tables.
    pub path: String,
    /// Duplicates are the ids with `cosine_sim_score >= 1 - epsilon`.
    pub epsilon: f64,
    /// AWS profile for reading them (`None`: the input's).
    pub s3_profile: Option<String>,
}

/// Where this process stands in a multi-process job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    /// Number of processes; 1 runs in-process only.
    pub processes: usize,
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process, in process order (empty for one process).
    pub addresses: Vec<String>,
    /// Seconds to wait for every process to connect.
    pub connect_timeout_s: u64,
    /// Seconds without an answer from another process before the job stops.
    pub peer_timeout_s: u64,
}

impl Cluster {
    /// The timely configuration for `workers` threads in this process.
    pub fn timely_config(&self, workers: usize) -> timely::Config {
        if self.processes <= 1 {
            return timely::Config::process(workers);
        }
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: workers,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }
}

impl ShardConfig {
    /// Target tar size in bytes.
    pub fn target_tar_bytes(&self) -> u64 {
        (self.target_tar_size_mb * 1024.0 * 1024.0) as u64
    }

    /// `<input>`; the config was validated, so it parses.
    pub fn input_location(&self) -> Location {
        Location::parse(&self.input).expect("validated")
    }

    /// `<input>/metas/<version>`.
    pub fn meta_dir(&self) -> Location {
        self.input_location()
            .join(&format!("metas/{}", self.version))
    }

    /// `<output>/<version>`.
    pub fn version_dir(&self) -> Location {
        Location::parse(&self.output)
            .expect("validated")
            .join(&self.version)
    }

    /// `<output>/<version>` as written into `wdinfo.json`'s `root` (SPEC §7): the local path
    /// as the user wrote it, or the object key prefix without scheme and bucket.
    pub fn root_version_dir(&self) -> String {
        match self.version_dir() {
            Location::Local(_) => self.display_version_dir(),
            remote => remote.path_str(),
        }
    }

    /// `<output>/<version>` as the user wrote it (with the scheme and bucket of a URI);
    /// `wdinfo_list.csv` rows start with it.
    pub fn display_version_dir(&self) -> String {
        format!("{}/{}", self.output.trim_end_matches('/'), self.version)
    }
}

#[cfg(test)]
mod tests;
