//! The raw options of `shard`, each declared once: a field here is at the same time a
//! command-line flag (its doc comment is the `--help` text) and a config-file key of the same
//! name in snake_case. The `[cluster]` and `[storage]` sections are nested structs (serde's
//! `flatten` cannot be combined with `deny_unknown_fields`); the `[bins]` table is file-only.
//! Every value is optional: [`Merge::over`] lays the command line over the file, and
//! [`ShardConfig::resolve`](super::ShardConfig::resolve) fills defaults and validates.

// the doc comments of the options are their `--help` text, written for a terminal
// (`metas/<version>/`, `[bins]`), not for rustdoc
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use serde::Deserialize;

use crate::spec::bins::table::BinsFile;

/// Options from two sources, one laid over the other: the command line over the config file.
pub trait Merge {
    /// `self` where it is set, `under` where it is not; sections merge key by key.
    fn over(self, under: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn over(self, under: Self) -> Self {
        self.or(under)
    }
}

/// Declares an options struct once: the fields, grouped under their `--help` heading (a
/// group's `file_only` block holds the keys that have no command-line flag), then the nested
/// sections (no heading of their own: their fields carry one). Adds [`Merge`] (field by field,
/// sections recursively) and `KEYS`, the config-file keys in declaration order.
macro_rules! options {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $heading:literal {
                    $( $(#[$field_attr:meta])* pub $field:ident: $ty:ty, )*
                    $( file_only {
                        $( $(#[$file_attr:meta])* pub $file_field:ident: $file_ty:ty, )*
                    } )?
                }
            )*
            $( $(#[$section_attr:meta])* pub $section:ident: $section_ty:ty, )*
        }
    ) => {
        $(#[$attr])*
        pub struct $name {
            $(
                $(
                    #[arg(help_heading = $heading)]
                    $(#[$field_attr])*
                    pub $field: $ty,
                )*
                $($(
                    #[arg(skip)]
                    $(#[$file_attr])*
                    pub $file_field: $file_ty,
                )*)?
            )*
            $(
                $(#[$section_attr])*
                pub $section: $section_ty,
            )*
        }

        impl Merge for $name {
            fn over(self, under: Self) -> Self {
                Self {
                    $(
                        $( $field: Merge::over(self.$field, under.$field), )*
                        $($( $file_field: Merge::over(self.$file_field, under.$file_field), )*)?
                    )*
                    $( $section: Merge::over(self.$section, under.$section), )*
                }
            }
        }

        impl $name {
            /// The config-file keys, in declaration order.
            pub const KEYS: &'static [&'static str] = &[
                $(
                    $( stringify!($field), )*
                    $($( stringify!($file_field), )*)?
                )*
                $( stringify!($section), )*
            ];
        }
    };
}

/// The `shard` (and `reshard`) command line: a config file, the options, and how to run.
#[derive(clap::Args)]
pub struct ShardArgs {
    /// A TOML config file: every option below as a key of the same name in snake_case,
    /// cluster options in a `[cluster]` section, the `--s3-*` options in `[storage]` without
    /// the `s3_` prefix. The command line overrides it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Validate the options, input and model, then exit without running.
    #[arg(long)]
    pub check: bool,
    /// Continue an interrupted job in the same output: keep its completed tars, write the
    /// rest. Refused if the options, model or inputs differ from the interrupted job's.
    #[arg(long, conflicts_with = "append")]
    pub resume: bool,
    /// Add the clips that appeared in metas/<version>/ since the output was written, as new
    /// parts after each bin's last one; existing tars are left as they are, the wdinfo files
    /// are replaced. The output must be a complete shardflow run with the same options.
    #[arg(long)]
    pub append: bool,
    /// The job's options (also the config file's keys).
    #[command(flatten)]
    pub options: ShardOptions,
}

impl ShardArgs {
    /// The command-line options laid over those of `--config` (when given); the error is
    /// [`ShardOptions::load`]'s.
    pub fn merged_options(&self) -> Result<ShardOptions, String> {
        let file = match &self.config {
            Some(path) => ShardOptions::load(path)?,
            None => ShardOptions::default(),
        };
        Ok(self.options.clone().over(file))
    }
}

options! {
    /// A `shard` job's options as given, on the command line or in a config file (relative
    /// paths there are taken relative to the file's directory). Unknown keys are errors, so a
    /// typo never silently falls back to a default.
    #[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
    #[serde(deny_unknown_fields)]
    pub struct ShardOptions {
        "Input" {
            /// Input: the directory or s3://bucket/prefix holding `clips/` and `metas/<version>/`.
            #[arg(long)]
            pub input_clip_path: Option<String>,
            /// Annotation version: reads `metas/<version>/`, writes `<output>/<version>/` [default: v0].
            #[arg(long)]
            pub annotation_version: Option<String>,
            /// How metadata files are found: scan (every file under metas/<version>/) or summary
            /// (the clips listed in <input>/summary.json, as the later reference does) [default: scan].
            #[arg(long)]
            pub listing: Option<String>,
            /// Caption field prefix: windows hold `<algorithm>_caption` [default: qwen].
            #[arg(long)]
            pub captioning_algorithm: Option<String>,
            /// Rewrite a `clip_location` prefix, FROM=TO (repeatable; first match wins).
            #[arg(long, value_name = "REMAPS")]
            pub remap_clip_location: Option<Vec<String>>,
            /// Only read clips under these prefixes (local directories or s3:// URIs, comma-separated
            /// or repeated); a clip_location elsewhere is rejected [default: anywhere].
            #[arg(long, value_delimiter = ',')]
            pub allowed_clip_roots: Option<Vec<String>>,
        }
        "Output" {
            /// Output dataset directory or s3://bucket/prefix; the dataset goes to
            /// `<output>/<version>/`.
            #[arg(long)]
            pub output_dataset_path: Option<String>,
            /// What the members hold, i.e. which trainer reads the dataset unchanged: reference
            /// (cosmos-curate's) or cosmos-predict2.5 (NVIDIA's trainer: `nb_frames` and
            /// `t2w_windows` in each .json, one embedding dict per window) [default: reference].
            #[arg(long)]
            pub layout: Option<String>,
        }
        "Encoder" {
            /// Hugging Face T5 or UMT5 model directory (config.json, weights, tokenizer.json).
            #[arg(long)]
            pub t5_model: Option<PathBuf>,
            /// Where the encoder runs: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`) [default: cpu].
            #[arg(long)]
            pub device: Option<String>,
            /// Encoder precision: fp32 (the reference's), bf16 or fp16 (cuda only) [default: fp32].
            #[arg(long)]
            pub t5_dtype: Option<String>,
            /// Caption windows per encoder batch [default: 16 on cpu, 512 on cuda].
            #[arg(long)]
            pub batch_size: Option<usize>,
            /// Tokens per encoder batch [default: 4096 on cpu, 131072 on cuda]. The CPU packs a
            /// batch without padding; a GPU runs it as length-sorted padded groups.
            #[arg(long)]
            pub max_batch_tokens: Option<usize>,
            /// Worker threads in this process [default: available cores].
            #[arg(long)]
            pub workers: Option<usize>,
        }
        "Bins and tars" {
            /// Bin spec: frames (the reference v1.0.0's: resolution / aspect ratio / frame count) or
            /// duration (the later reference's: duration bins, resolution_lt_720 kept); a [bins]
            /// table in the config file defines custom bins [default: frames].
            #[arg(long)]
            pub bin_spec: Option<String>,
            /// Target tar size in MiB (metadata `num_bytes` summed) [default: 500].
            #[arg(long)]
            pub target_tar_size_mb: Option<f64>,
            /// Tars per part folder [default: 100].
            #[arg(long)]
            pub max_tars_per_part: Option<u32>,
            /// With --drop-small-shards: a bin's last tar with fewer clips is dropped [default: 1].
            #[arg(long)]
            pub min_clips_per_tar: Option<u32>,
            /// Drop a bin's last (remainder) tar when it holds fewer than --min-clips-per-tar clips;
            /// its clips are counted as dropped_small_tar.
            #[arg(long, num_args = 0, default_missing_value = "true")]
            pub drop_small_shards: Option<bool>,
            file_only {
                /// A user-defined bin table, the `[bins]` section (see
                /// [`crate::spec::bins::table`]).
                pub bins: Option<BinsFile>,
            }
        }
        "Filters" {
            /// Semantic-dedup output (directory or s3:// prefix): clips whose cosine_sim_score in
            /// extraction/semdedup_pruning_tables/*.parquet is >= 1 - epsilon are left out.
            #[arg(long)]
            pub input_semantic_dedup_path: Option<String>,
            /// Dedup threshold: duplicates have cosine_sim_score >= 1 - epsilon [default: 0.01].
            #[arg(long)]
            pub semantic_dedup_epsilon: Option<f64>,
            /// AWS profile for reading the dedup tables [default: the input's].
            #[arg(long)]
            pub input_semantic_dedup_s3_profile_name: Option<String>,
            /// Write the clips even when not one window has its `<algorithm>_caption` (all are
            /// written with valid: false and no embeddings); without it such a run is refused.
            #[arg(long, num_args = 0, default_missing_value = "true")]
            pub allow_no_captions: Option<bool>,
            /// Exit with code 4 after the job completes if more than this fraction of the listed
            /// inputs was rejected [default: 0, i.e. any reject].
            #[arg(long)]
            pub max_rejected_fraction: Option<f64>,
        }
        "Indexes" {
            /// Random-access indexes written with the tars, computed while writing: dali (an .idx
            /// beside every tar, DALI's v1.2 format) and/or wids (a shardindex.json per bin and
            /// stream) [default: none].
            #[arg(long, value_delimiter = ',')]
            pub index: Option<Vec<String>>,
        }
        "Object store" {
            /// AWS profile (in ~/.aws/credentials, ~/.aws/config) for reading the input; named
            /// explicitly, its keys override AWS_ACCESS_KEY_ID [default: $AWS_PROFILE or default].
            #[arg(long)]
            pub input_s3_profile_name: Option<String>,
            /// AWS profile for writing the output [default: $AWS_PROFILE or default].
            #[arg(long)]
            pub output_s3_profile_name: Option<String>,
        }
        "Monitoring" {
            /// Serve live metrics in Prometheus' text format at http://ADDR/metrics while the job
            /// runs, ADDR an IP address and port (e.g. 127.0.0.1:9184); each process serves its
            /// own, and `launch` adds the process index to the port [default: off].
            #[arg(long, value_name = "ADDR")]
            pub metrics_listen: Option<String>,
        }
        /// The `[cluster]` section: running as several processes.
        #[command(flatten)]
        #[serde(default)]
        pub cluster: ClusterSection,
        /// The `[storage]` section: object-store requests.
        #[command(flatten)]
        #[serde(default)]
        pub storage: StorageSection,
    }
}

options! {
    /// The `[cluster]` section: timely's own cluster mode.
    #[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
    #[serde(deny_unknown_fields, expecting = "a [cluster] table")]
    pub struct ClusterSection {
        "Cluster" {
            /// Number of processes of the job (timely cluster mode) [default: 1].
            #[arg(long)]
            pub processes: Option<usize>,
            /// This process's index, 0..processes.
            #[arg(long)]
            pub process: Option<usize>,
            /// Read the process index from this environment variable (e.g. SLURM_PROCID,
            /// JOB_COMPLETION_INDEX). SHARDFLOW_PROCESS is read when neither is given.
            #[arg(long)]
            pub process_env: Option<String>,
            /// timely hostfile: one host:port per line, line i for process i.
            #[arg(long)]
            pub hostfile: Option<PathBuf>,
            /// Stop with an error when the processes have not all connected within this many
            /// seconds [default: 120].
            #[arg(long)]
            pub connect_timeout_s: Option<u64>,
            /// Stop with an error (exit code 3) when another process has not answered for this
            /// many seconds: a dead host or a network link that went down silently
            /// (TCP keepalive and TCP_USER_TIMEOUT on the connections between processes)
            /// [default: 30].
            #[arg(long)]
            pub peer_timeout_s: Option<u64>,
            file_only {
                /// The same as `hostfile`, inline: `host:port` of every process.
                pub addresses: Option<Vec<String>>,
            }
        }
    }
}

options! {
    /// The `[storage]` section: how object stores (S3) are used. Local paths ignore it. On the
    /// command line its keys take an `s3-` prefix.
    #[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
    #[serde(deny_unknown_fields, expecting = "a [storage] table")]
    pub struct StorageSection {
        "Object store" {
            /// Object-store retries of one failed request (503 SlowDown, 5xx, connection errors)
            /// before the job fails [default: 10].
            #[arg(long = "s3-max-retries", value_name = "S3_MAX_RETRIES")]
            pub max_retries: Option<usize>,
            /// Stop retrying one object-store request after this many seconds [default: 180].
            #[arg(long = "s3-retry-timeout-s", value_name = "S3_RETRY_TIMEOUT_S")]
            pub retry_timeout_s: Option<u64>,
            /// Multipart upload part size in MiB, at least 5 [default: 16].
            #[arg(long = "s3-part-size-mb", value_name = "S3_PART_SIZE_MB")]
            pub part_size_mb: Option<usize>,
            file_only {
                /// Requests in flight per batch of reads: metadata, clip checks, clip prefetch
                /// (default 16).
                pub read_concurrency: Option<usize>,
                /// Parts of one upload in flight at once (default 4).
                pub parts_in_flight: Option<usize>,
            }
        }
    }
}

#[cfg(test)]
mod tests;
