//! The `--config` TOML file. Every command-line option of `shard` has a top-level key of the
//! same name in snake_case; the cluster settings form the `[cluster]` section. Unknown keys
//! are errors, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A `shard` job as written in a config file. Every field is optional here: the command line
/// overrides the file, and defaults fill the rest.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    /// Input: the directory (or `s3://bucket/prefix`) holding `clips/` and
    /// `metas/<version>/`.
    pub input_clip_path: Option<String>,
    /// Output dataset directory (or `s3://bucket/prefix`); the dataset goes to
    /// `<output>/<version>/`.
    pub output_dataset_path: Option<String>,
    /// Annotation version (default `v0`).
    pub annotation_version: Option<String>,
    /// Hugging Face T5 model directory.
    pub t5_model: Option<PathBuf>,
    /// Worker threads per process (default: available cores).
    pub workers: Option<usize>,
    /// Caption windows per encoder batch (default 16).
    pub batch_size: Option<usize>,
    /// Tokens per encoder batch (default 4096).
    pub max_batch_tokens: Option<usize>,
    /// `cpu`, `cuda` or `cuda:N` (default `cpu`).
    pub device: Option<String>,
    /// `fp32`, `bf16` or `fp16` (default `fp32`).
    pub t5_dtype: Option<String>,
    /// Target tar size in MiB (default 500).
    pub target_tar_size_mb: Option<f64>,
    /// Tars per part folder (default 100).
    pub max_tars_per_part: Option<u32>,
    /// Caption field prefix: windows hold `<algorithm>_caption` (default `qwen`).
    pub captioning_algorithm: Option<String>,
    /// `clip_location` prefix rewrites, each `FROM=TO`.
    pub remap_clip_location: Option<Vec<String>>,
    /// Clips must lie under one of these prefixes (local directories or `s3://` URIs);
    /// others are rejected. Unset: any location.
    pub allowed_clip_roots: Option<Vec<String>>,
    /// Exit non-zero after the job completes when more than this fraction of the listed
    /// inputs was rejected (default 0: any reject).
    pub max_rejected_fraction: Option<f64>,
    /// AWS profile for reading the input (default: `$AWS_PROFILE`, else `default`).
    pub input_s3_profile_name: Option<String>,
    /// AWS profile for writing the output.
    pub output_s3_profile_name: Option<String>,
    /// Bin spec: `frames` (the reference v1.0.0's, default) or `duration` (the later
    /// reference's); a `[bins]` section defines a custom table instead.
    pub bin_spec: Option<String>,
    /// A user-defined bin table (see [`crate::spec::bins::table`]).
    pub bins: Option<crate::spec::bins::table::BinsFile>,
    /// How the metadata files are found: `scan` (every file under `metas/<version>/`,
    /// default) or `summary` (the clips listed in `<input>/summary.json`).
    pub listing: Option<String>,
    /// Semantic-dedup output (local or `s3://`): clips its pruning tables mark as duplicates
    /// are left out.
    pub input_semantic_dedup_path: Option<String>,
    /// A clip is a duplicate when its `cosine_sim_score >= 1 - epsilon` (default 0.01).
    pub semantic_dedup_epsilon: Option<f64>,
    /// AWS profile for reading the semantic-dedup tables (default: the input's).
    pub input_semantic_dedup_s3_profile_name: Option<String>,
    /// With `drop_small_shards`: a bin's last tar with fewer clips than this is dropped
    /// (default 1).
    pub min_clips_per_tar: Option<u32>,
    /// Drop a bin's last (remainder) tar when it has fewer than `min_clips_per_tar` clips
    /// (default false).
    pub drop_small_shards: Option<bool>,
    /// Random-access indexes written with the tars: `dali` (an `.idx` beside every tar, in
    /// DALI's `v1.2` format) and/or `wids` (a `shardindex.json` per bin and stream). Default:
    /// none, so the output is exactly the reference's.
    pub index: Option<Vec<String>>,
    /// Running as several processes.
    pub cluster: Option<ClusterFile>,
    /// Object-store requests: retries, concurrency, upload part size.
    pub storage: Option<StorageFile>,
}

/// The `[storage]` section: how object stores (S3) are used. Local paths ignore it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    /// Retries of a failed request (503 SlowDown, other 5xx, connection errors) before the job
    /// fails (default 10).
    pub max_retries: Option<usize>,
    /// Stop retrying one request after this many seconds (default 180).
    pub retry_timeout_s: Option<u64>,
    /// Requests in flight per batch of reads: metadata, clip checks, clip prefetch (default 16).
    pub read_concurrency: Option<usize>,
    /// Multipart upload part size in MiB, at least 5 (default 16).
    pub part_size_mb: Option<usize>,
    /// Parts of one upload in flight at once (default 4).
    pub parts_in_flight: Option<usize>,
}

/// The `[cluster]` section: timely's own cluster mode.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Number of processes (default 1).
    pub processes: Option<usize>,
    /// This process's index, `0..processes`. Usually given per process on the command line
    /// or through `process_env` instead.
    pub process: Option<usize>,
    /// Name of an environment variable holding the process index (`SLURM_PROCID` under
    /// Slurm, `JOB_COMPLETION_INDEX` in a Kubernetes indexed job).
    pub process_env: Option<String>,
    /// timely hostfile: one `host:port` per line, line i for process i. Relative to the
    /// config file's directory.
    pub hostfile: Option<PathBuf>,
    /// The same as `hostfile`, inline.
    pub addresses: Option<Vec<String>>,
    /// Give up when the processes have not all connected within this many seconds
    /// (default 120).
    pub connect_timeout_s: Option<u64>,
}

impl ShardFile {
    /// Reads and parses a config file; relative paths in it are taken relative to the file's
    /// directory.
    pub fn load(path: &Path) -> Result<ShardFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file: ShardFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = file.input_clip_path.as_mut() {
            if !p.contains("://") && Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).to_string_lossy().into_owned();
            }
        }
        if let Some(p) = file.t5_model.as_mut() {
            rebase(p);
        }
        if let Some(p) = file.cluster.as_mut().and_then(|c| c.hostfile.as_mut()) {
            rebase(p);
        }
        for r in file.allowed_clip_roots.iter_mut().flatten() {
            if !r.contains("://") && Path::new(r.as_str()).is_relative() {
                *r = base.join(r.as_str()).to_string_lossy().into_owned();
            }
        }
        for r in file.remap_clip_location.iter_mut().flatten() {
            if let Some((from, to)) = r.split_once('=') {
                if !to.is_empty() && !to.contains("://") && Path::new(to).is_relative() {
                    *r = format!("{from}={}", base.join(to).display());
                }
            }
        }
        if let Some(o) = file.output_dataset_path.as_mut() {
            if !o.contains("://") && Path::new(o.as_str()).is_relative() && base != Path::new("") {
                *o = base.join(o.as_str()).to_string_lossy().into_owned();
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "workers = 2\ntarget_tar_size_gb = 1\n").unwrap();
        let err = ShardFile::load(&p).unwrap_err();
        assert!(err.contains("target_tar_size_gb"), "{err}");
        std::fs::write(&p, "[cluster]\nprocesses = 2\nhosts = []\n").unwrap();
        let err = ShardFile::load(&p).unwrap_err();
        assert!(err.contains("hosts"), "{err}");
    }

    #[test]
    fn the_example_config_is_valid_also_with_its_bin_table() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/shard.example.toml");
        let env = |_: &str| None;
        let f = ShardFile::load(&example).unwrap();
        let cfg = crate::config::ShardConfig::resolve(f, &env).unwrap();
        assert_eq!(cfg.bins, crate::spec::BinSpec::Frames);
        // uncomment the [bins] table (and drop bin_spec, which it replaces)
        let text = std::fs::read_to_string(&example).unwrap();
        let mut out = String::new();
        let mut in_bins = false;
        for line in text.lines() {
            if line.starts_with("bin_spec") {
                continue;
            }
            if line == "# [bins]" {
                in_bins = true;
            }
            out.push_str(if in_bins {
                line.trim_start_matches("# ")
            } else {
                line
            });
            out.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, out).unwrap();
        let mut f = ShardFile::load(&p).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        f.input_clip_path = Some(root.join("tests/data/sample-dataset").display().to_string());
        f.t5_model = Some(root.join("tests/data/t5-tiny"));
        let cfg = crate::config::ShardConfig::resolve(f, &env).unwrap();
        let crate::spec::BinSpec::Custom(t) = cfg.bins else {
            panic!("the [bins] table is used");
        };
        assert_eq!(t.aspect_ratio.len(), 2);
        assert_eq!(t.length, crate::spec::bins::LengthKind::DurationS);
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "input_clip_path = \"in\"\nt5_model = \"/abs/model\"\noutput_dataset_path = \"out\"\n[cluster]\nhostfile = \"hosts\"\n").unwrap();
        let f = ShardFile::load(&p).unwrap();
        assert_eq!(
            f.input_clip_path.unwrap(),
            dir.path().join("in").to_string_lossy()
        );
        assert_eq!(f.t5_model.unwrap(), PathBuf::from("/abs/model"));
        assert_eq!(
            f.output_dataset_path.unwrap(),
            dir.path().join("out").to_string_lossy()
        );
        assert_eq!(
            f.cluster.unwrap().hostfile.unwrap(),
            dir.path().join("hosts")
        );
    }
}
