//! Job configuration: command-line options and an optional TOML file → a validated
//! [`ShardConfig`]. Validation reports every problem at once, each with its key path.

pub mod file;

use std::path::PathBuf;

pub use file::{ClusterFile, ShardFile, StorageFile};

use crate::model::{DeviceSpec, Precision};
use crate::spec::BinSpec;
use crate::storage::{Location, StorageOptions};
use crate::text::{shown, shown_quoted, shown_within, SHOWN_CHARS};

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
    /// Hugging Face T5 model directory.
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
    /// Indexes written with the tars.
    pub index: Indexes,
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

impl ShardFile {
    /// This file's values where `self` has none (`self` is the command line, `other` the file).
    pub fn or(self, other: ShardFile) -> ShardFile {
        let cluster = match (self.cluster, other.cluster) {
            (Some(a), Some(b)) => Some(ClusterFile {
                processes: a.processes.or(b.processes),
                process: a.process.or(b.process),
                process_env: a.process_env.or(b.process_env),
                hostfile: a.hostfile.or(b.hostfile),
                addresses: a.addresses.or(b.addresses),
                connect_timeout_s: a.connect_timeout_s.or(b.connect_timeout_s),
            }),
            (a, b) => a.or(b),
        };
        let storage = match (self.storage, other.storage) {
            (Some(a), Some(b)) => Some(StorageFile {
                max_retries: a.max_retries.or(b.max_retries),
                retry_timeout_s: a.retry_timeout_s.or(b.retry_timeout_s),
                read_concurrency: a.read_concurrency.or(b.read_concurrency),
                part_size_mb: a.part_size_mb.or(b.part_size_mb),
                parts_in_flight: a.parts_in_flight.or(b.parts_in_flight),
            }),
            (a, b) => a.or(b),
        };
        ShardFile {
            input_clip_path: self.input_clip_path.or(other.input_clip_path),
            output_dataset_path: self.output_dataset_path.or(other.output_dataset_path),
            annotation_version: self.annotation_version.or(other.annotation_version),
            t5_model: self.t5_model.or(other.t5_model),
            workers: self.workers.or(other.workers),
            batch_size: self.batch_size.or(other.batch_size),
            max_batch_tokens: self.max_batch_tokens.or(other.max_batch_tokens),
            device: self.device.or(other.device),
            t5_dtype: self.t5_dtype.or(other.t5_dtype),
            target_tar_size_mb: self.target_tar_size_mb.or(other.target_tar_size_mb),
            max_tars_per_part: self.max_tars_per_part.or(other.max_tars_per_part),
            captioning_algorithm: self.captioning_algorithm.or(other.captioning_algorithm),
            remap_clip_location: self.remap_clip_location.or(other.remap_clip_location),
            allowed_clip_roots: self.allowed_clip_roots.or(other.allowed_clip_roots),
            max_rejected_fraction: self.max_rejected_fraction.or(other.max_rejected_fraction),
            input_s3_profile_name: self.input_s3_profile_name.or(other.input_s3_profile_name),
            output_s3_profile_name: self.output_s3_profile_name.or(other.output_s3_profile_name),
            bin_spec: self.bin_spec.or(other.bin_spec),
            bins: self.bins.or(other.bins),
            listing: self.listing.or(other.listing),
            input_semantic_dedup_path: self
                .input_semantic_dedup_path
                .or(other.input_semantic_dedup_path),
            semantic_dedup_epsilon: self.semantic_dedup_epsilon.or(other.semantic_dedup_epsilon),
            input_semantic_dedup_s3_profile_name: self
                .input_semantic_dedup_s3_profile_name
                .or(other.input_semantic_dedup_s3_profile_name),
            min_clips_per_tar: self.min_clips_per_tar.or(other.min_clips_per_tar),
            drop_small_shards: self.drop_small_shards.or(other.drop_small_shards),
            allow_no_captions: self.allow_no_captions.or(other.allow_no_captions),
            index: self.index.or(other.index),
            cluster,
            storage,
        }
    }
}

impl ShardConfig {
    /// Builds a config from merged options, filling defaults and checking everything that can
    /// be checked without loading the model: every problem is returned, each as
    /// `key (--flag): what is wrong`. `env` looks up environment variables.
    pub fn resolve(
        f: ShardFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ShardConfig, Vec<String>> {
        let mut errors = Vec::new();
        let mut need = |v: Option<()>, key: &str, flag: &str| {
            if v.is_none() {
                errors.push(format!("{key} (--{flag}): required"));
            }
        };
        need(
            f.input_clip_path.as_ref().map(|_| ()),
            "input_clip_path",
            "input-clip-path",
        );
        need(
            f.output_dataset_path.as_ref().map(|_| ()),
            "output_dataset_path",
            "output-dataset-path",
        );
        need(f.t5_model.as_ref().map(|_| ()), "t5_model", "t5-model");
        let device_name = f.device.as_deref().unwrap_or("cpu");
        let device = match device_name.parse::<DeviceSpec>() {
            Ok(d) => d,
            Err(e) => {
                errors.push(format!("device (--device): {}", unechoed(&e, device_name)));
                DeviceSpec::Cpu
            }
        };
        let dtype_name = f.t5_dtype.as_deref().unwrap_or("fp32");
        let precision = match dtype_name.parse::<Precision>() {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!(
                    "t5_dtype (--t5-dtype): {}",
                    unechoed(&e, dtype_name)
                ));
                Precision::Fp32
            }
        };
        let mut remaps = Vec::new();
        for (i, r) in f.remap_clip_location.unwrap_or_default().iter().enumerate() {
            match parse_remap(r) {
                Ok(pair) => remaps.push(pair),
                Err(e) => errors.push(format!(
                    "remap_clip_location[{i}] (--remap-clip-location): {e}"
                )),
            }
        }
        let cluster = resolve_cluster(f.cluster.unwrap_or_default(), env, &mut errors);
        let storage = resolve_storage(
            f.storage.unwrap_or_default(),
            f.input_s3_profile_name,
            f.output_s3_profile_name,
            &mut errors,
        );
        let bins = match (f.bin_spec.as_deref(), f.bins) {
            (None | Some("custom"), Some(table)) => match table.resolve() {
                Ok(t) => BinSpec::Custom(std::sync::Arc::new(t)),
                Err(mut e) => {
                    errors.append(&mut e);
                    BinSpec::Frames
                }
            },
            (Some(name), Some(_)) => {
                errors.push(format!(
                    "bin_spec (--bin-spec): {} conflicts with the [bins] table of the config file; leave it out to use the table",
                    shown_quoted(name)
                ));
                BinSpec::Frames
            }
            (name, None) => match BinSpec::parse(name.unwrap_or("frames")) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(format!(
                        "bin_spec (--bin-spec): {}",
                        unechoed(&e, name.unwrap_or("frames"))
                    ));
                    BinSpec::Frames
                }
            },
        };
        let listing = match f.listing.as_deref().unwrap_or("scan") {
            "scan" => Listing::Scan,
            "summary" => Listing::Summary,
            other => {
                errors.push(format!(
                    "listing (--listing): unknown listing {}: expected scan or summary",
                    shown_quoted(other)
                ));
                Listing::Scan
            }
        };
        if f.input_semantic_dedup_path.is_none()
            && (f.semantic_dedup_epsilon.is_some()
                || f.input_semantic_dedup_s3_profile_name.is_some())
        {
            errors.push("semantic_dedup_epsilon (--semantic-dedup-epsilon): needs --input-semantic-dedup-path".into());
        }
        let semantic_dedup = f.input_semantic_dedup_path.map(|path| SemanticDedup {
            path,
            epsilon: f.semantic_dedup_epsilon.unwrap_or(0.01),
            s3_profile: f.input_semantic_dedup_s3_profile_name,
        });
        let index = match Indexes::parse(&f.index.unwrap_or_default()) {
            Ok(i) => i,
            Err(e) => {
                errors.push(format!("index (--index): {e}"));
                Indexes::default()
            }
        };
        let cfg = ShardConfig {
            input: f.input_clip_path.unwrap_or_default(),
            output: f.output_dataset_path.unwrap_or_default(),
            version: f.annotation_version.unwrap_or_else(|| "v0".into()),
            model_dir: f.t5_model.unwrap_or_default(),
            workers: f.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
            batch_size: f.batch_size.unwrap_or(16),
            max_batch_tokens: f.max_batch_tokens.unwrap_or(4096),
            device,
            precision,
            target_tar_size_mb: f.target_tar_size_mb.unwrap_or(500.0),
            max_tars_per_part: f.max_tars_per_part.unwrap_or(100),
            captioning_algorithm: f.captioning_algorithm.unwrap_or_else(|| "qwen".into()),
            remaps,
            cluster,
            storage,
            allowed_clip_roots: f.allowed_clip_roots.unwrap_or_default(),
            max_rejected_fraction: f.max_rejected_fraction.unwrap_or(0.0),
            bins,
            listing,
            semantic_dedup,
            min_clips_per_tar: f.min_clips_per_tar.unwrap_or(1),
            drop_small_shards: f.drop_small_shards.unwrap_or(false),
            allow_no_captions: f.allow_no_captions.unwrap_or(false),
            index,
        };
        if let Err(mut more) = cfg.validate() {
            errors.append(&mut more);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            // the messages above shorten the values they echo; this bounds the rest (the
            // [bins] table's, say)
            Err(errors
                .iter()
                .map(|e| shown_within(e, MESSAGE_CHARS))
                .collect())
        }
    }

    /// Checks every field; returns all problems at once, each naming its option.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, key: &str, msg: String| {
            if !ok {
                errors.push(format!("{key} (--{}): {msg}", key.replace('_', "-")));
            }
        };
        check(self.workers > 0, "workers", "must be at least 1".into());
        check(
            self.batch_size > 0,
            "batch_size",
            "must be at least 1".into(),
        );
        check(
            self.max_batch_tokens >= 512,
            "max_batch_tokens",
            format!(
                "must be at least 512 (one full caption), got {}",
                self.max_batch_tokens
            ),
        );
        check(
            self.device != DeviceSpec::Cpu || self.precision == Precision::Fp32,
            "t5_dtype",
            "bf16 and fp16 need --device cuda; the CPU backend computes in fp32".into(),
        );
        check(
            self.target_tar_size_mb.is_finite() && self.target_tar_size_mb > 0.0,
            "target_tar_size_mb",
            format!("must be a positive number, got {}", self.target_tar_size_mb),
        );
        check(
            (0.0..=1.0).contains(&self.max_rejected_fraction),
            "max_rejected_fraction",
            format!(
                "must be between 0 and 1, got {}",
                self.max_rejected_fraction
            ),
        );
        for (i, r) in self.allowed_clip_roots.iter().enumerate() {
            if let Err(e) = Location::parse(r) {
                check(false, &format!("allowed_clip_roots[{i}]"), unechoed(&e, r));
            }
        }
        check(
            self.min_clips_per_tar > 0,
            "min_clips_per_tar",
            "must be at least 1".into(),
        );
        if let Some(d) = &self.semantic_dedup {
            check(
                d.epsilon.is_finite() && (0.0..=1.0).contains(&d.epsilon),
                "semantic_dedup_epsilon",
                format!("must be between 0 and 1, got {}", d.epsilon),
            );
            if let Err(e) = Location::parse(&d.path) {
                check(false, "input_semantic_dedup_path", unechoed(&e, &d.path));
            }
        }
        check(
            self.max_tars_per_part > 0,
            "max_tars_per_part",
            "must be at least 1".into(),
        );
        if let Err(e) = check_version(&self.version) {
            check(false, "annotation_version", e);
        }
        check(
            !self.captioning_algorithm.is_empty(),
            "captioning_algorithm",
            "must not be empty".into(),
        );
        check(
            !self.output.is_empty(),
            "output_dataset_path",
            "must not be empty".into(),
        );
        match Location::parse(&self.input) {
            Err(e) => check(false, "input_clip_path", unechoed(&e, &self.input)),
            Ok(Location::Local(p)) => check(
                self.input.is_empty() || p.is_dir(),
                "input_clip_path",
                format!(
                    "{} is not a readable directory",
                    shown(&p.to_string_lossy())
                ),
            ),
            Ok(Location::Remote { .. }) => {}
        }
        if let Err(e) = Location::parse(&self.output) {
            check(false, "output_dataset_path", unechoed(&e, &self.output));
        }
        for (i, (_, to)) in self.remaps.iter().enumerate() {
            if let Err(e) = Location::parse(to) {
                check(
                    false,
                    &format!("remap_clip_location[{i}]"),
                    unechoed(&e, to),
                );
            }
        }
        check(
            self.model_dir.as_os_str().is_empty() || self.model_dir.is_dir(),
            "t5_model",
            format!(
                "{} is not a directory",
                shown(&self.model_dir.to_string_lossy())
            ),
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

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

fn resolve_storage(
    s: StorageFile,
    input_profile: Option<String>,
    output_profile: Option<String>,
    errors: &mut Vec<String>,
) -> StorageOptions {
    let d = StorageOptions::default();
    let part_size_mb = s.part_size_mb.unwrap_or(d.part_size_bytes >> 20);
    if part_size_mb < 5 {
        errors.push(format!(
            "storage.part_size_mb (--s3-part-size-mb): must be at least 5 (S3's minimum part size), got {part_size_mb}"
        ));
    }
    let mut positive = |v: Option<usize>, key: &str| {
        if v == Some(0) {
            errors.push(format!("storage.{key}: must be at least 1"));
        }
        v
    };
    StorageOptions {
        input_profile,
        output_profile,
        max_retries: s.max_retries.unwrap_or(d.max_retries),
        retry_timeout_s: s.retry_timeout_s.unwrap_or(d.retry_timeout_s),
        read_concurrency: positive(s.read_concurrency, "read_concurrency")
            .unwrap_or(d.read_concurrency),
        part_size_bytes: part_size_mb << 20,
        parts_in_flight: positive(s.parts_in_flight, "parts_in_flight")
            .unwrap_or(d.parts_in_flight),
        server_copy_max_bytes: d.server_copy_max_bytes,
    }
}

fn resolve_cluster(
    c: ClusterFile,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) -> Cluster {
    let processes = c.processes.unwrap_or(1);
    if processes == 0 {
        errors.push("cluster.processes (--processes): must be at least 1".into());
    }
    let from_env = |var: &str, errors: &mut Vec<String>| -> Option<usize> {
        let v = env(var)?;
        match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(format!(
                    "cluster.process_env: ${} is {}, not a process index",
                    shown(var),
                    shown_quoted(&v)
                ));
                None
            }
        }
    };
    let process = match (c.process, &c.process_env) {
        (Some(p), _) => p,
        (None, Some(var)) => match from_env(var, errors) {
            Some(p) => p,
            None if processes > 1 && env(var).is_none() => {
                errors.push(format!(
                    "cluster.process_env (--process-env): ${} is not set",
                    shown(var)
                ));
                0
            }
            None => 0,
        },
        (None, None) => from_env("SHARDFLOW_PROCESS", errors).unwrap_or(0),
    };
    if processes >= 1 && process >= processes {
        errors.push(format!(
            "cluster.process (--process): {process} is not below cluster.processes ({processes})"
        ));
    }
    let mut addresses = Vec::new();
    if let Some(a) = c.addresses {
        addresses = a;
    } else if let Some(h) = &c.hostfile {
        match std::fs::read_to_string(h) {
            Ok(text) => {
                addresses = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            Err(e) => errors.push(format!(
                "cluster.hostfile (--hostfile): {}: {e}",
                shown(&h.to_string_lossy())
            )),
        }
    } else if processes > 1 {
        // timely's default: consecutive ports on localhost
        addresses = (0..processes)
            .map(|i| format!("localhost:{}", 2101 + i))
            .collect();
    }
    if processes > 1 && addresses.len() < processes {
        errors.push(format!(
            "cluster.addresses (--hostfile): {} addresses for {processes} processes",
            addresses.len()
        ));
    }
    for (i, a) in addresses.iter().enumerate() {
        if a.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            errors.push(format!(
                "cluster.addresses[{i}]: {} is not host:port",
                shown_quoted(a)
            ));
        }
    }
    Cluster {
        processes: processes.max(1),
        process,
        addresses,
        connect_timeout_s: c.connect_timeout_s.unwrap_or(120),
    }
}

/// Parses `FROM=TO`.
pub fn parse_remap(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() => Ok((from.to_string(), to.to_string())),
        _ => Err(format!(
            "expected FROM=TO with a non-empty FROM, got {}",
            shown_quoted(s)
        )),
    }
}

/// Why `version` cannot be an annotation version, if it cannot: it must be one directory
/// name (not empty, no `/`, not `.` or `..`), since it is joined to the input's `metas/` and
/// the output path. Also the rule for `reshard --from-version`.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() || version.contains('/') || version == ".." || version == "." {
        Err(format!("{} is not a directory name", shown_quoted(version)))
    } else {
        Ok(())
    }
}

/// Longest validation message, in characters.
const MESSAGE_CHARS: usize = 800;

/// `message`, which another module wrote about `value`, with `value` shortened and escaped
/// ([`shown`]) wherever it is echoed, as `{:?}` or as is.
fn unechoed(message: &str, value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS && shown(value) == value {
        return message.to_owned();
    }
    let message = message
        .replace(&format!("{value:?}"), &shown_quoted(value))
        .replace(value, &shown(value));
    shown_within(&message, MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ShardConfig {
        ShardConfig {
            input: ".".into(),
            output: "out/".into(),
            version: "v0".into(),
            model_dir: ".".into(),
            workers: 2,
            batch_size: 8,
            max_batch_tokens: 4096,
            device: DeviceSpec::Cpu,
            precision: Precision::Fp32,
            target_tar_size_mb: 500.0,
            max_tars_per_part: 100,
            captioning_algorithm: "qwen".into(),
            remaps: vec![],
            cluster: Cluster::default(),
            storage: StorageOptions::default(),
            allowed_clip_roots: vec![],
            max_rejected_fraction: 0.0,
            bins: BinSpec::Frames,
            listing: Listing::Scan,
            semantic_dedup: None,
            min_clips_per_tar: 1,
            drop_small_shards: false,
            allow_no_captions: false,
            index: Indexes::default(),
        }
    }

    #[test]
    fn object_store_paths() {
        let c = ShardConfig {
            input: "s3://in-bucket/data/".into(),
            output: "s3://out-bucket/sets/run1/".into(),
            ..cfg()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.meta_dir().to_string(), "s3://in-bucket/data/metas/v0");
        assert_eq!(c.version_dir().to_string(), "s3://out-bucket/sets/run1/v0");
        assert_eq!(c.root_version_dir(), "sets/run1/v0");
        assert_eq!(c.display_version_dir(), "s3://out-bucket/sets/run1/v0");
        assert_eq!(cfg().root_version_dir(), "out/v0");
        let bad = ShardConfig {
            input: "ftp://h/x".into(),
            output: "http://h/y".into(),
            remaps: vec![("/a".into(), "hdfs://x/".into())],
            ..cfg()
        };
        let errs = bad.validate().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0]
                .starts_with("input_clip_path (--input-clip-path): ftp://h/x: unsupported scheme"),
            "{errs:?}"
        );
        assert!(errs[1].starts_with("output_dataset_path"), "{errs:?}");
        assert!(errs[2].starts_with("remap_clip_location[0]"), "{errs:?}");
    }

    #[test]
    fn storage_section_is_validated() {
        let f = ShardFile {
            input_clip_path: Some(".".into()),
            output_dataset_path: Some("o".into()),
            t5_model: Some(".".into()),
            output_s3_profile_name: Some("team".into()),
            storage: Some(StorageFile {
                part_size_mb: Some(4),
                read_concurrency: Some(0),
                max_retries: Some(2),
                ..StorageFile::default()
            }),
            ..ShardFile::default()
        };
        let errs = ShardConfig::resolve(f.clone(), &|_| None).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("storage.part_size_mb") && errs[0].contains("at least 5"));
        assert!(errs[1].contains("storage.read_concurrency"));
        let mut ok = f;
        ok.storage = Some(StorageFile {
            part_size_mb: Some(8),
            max_retries: Some(2),
            ..StorageFile::default()
        });
        let c = ShardConfig::resolve(ok, &|_| None).unwrap();
        assert_eq!(c.storage.part_size_bytes, 8 << 20);
        assert_eq!(c.storage.max_retries, 2);
        assert_eq!(c.storage.output_profile.as_deref(), Some("team"));
        assert_eq!(c.storage.input_profile, None);
    }

    #[test]
    fn valid_config_and_derived_paths() {
        let c = cfg();
        assert!(c.validate().is_ok());
        assert_eq!(c.target_tar_bytes(), 500 * 1024 * 1024);
        assert_eq!(c.display_version_dir(), "out/v0");
        assert_eq!(c.meta_dir(), Location::Local(PathBuf::from("./metas/v0")));
    }

    #[test]
    fn every_error_reported_at_once() {
        let mut c = cfg();
        c.workers = 0;
        c.batch_size = 0;
        c.target_tar_size_mb = -1.0;
        c.max_tars_per_part = 0;
        c.version = "a/b".into();
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
        for opt in [
            "--workers",
            "--batch-size",
            "--target-tar-size-mb",
            "--max-tars-per-part",
            "--annotation-version",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(&format!("({opt})"))),
                "{opt} missing in {errs:?}"
            );
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn resolve_reports_every_problem_with_its_key_path() {
        let f = ShardFile {
            workers: Some(0),
            device: Some("gpu".into()),
            remap_clip_location: Some(vec!["x".into()]),
            cluster: Some(ClusterFile {
                processes: Some(2),
                process: Some(5),
                addresses: Some(vec!["127.0.0.1:1".into(), "nope".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
        for key in [
            "input_clip_path (--input-clip-path): required",
            "output_dataset_path",
            "t5_model",
            "workers (--workers)",
            "device (--device)",
            "remap_clip_location[0]",
            "cluster.process (--process)",
            "cluster.addresses[1]",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(key)),
                "{key} missing in {errs:#?}"
            );
        }
    }

    #[test]
    fn command_line_overrides_file_and_env_gives_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let file = ShardFile {
            input_clip_path: Some(dir.path().to_string_lossy().into_owned()),
            output_dataset_path: Some("out".into()),
            t5_model: Some(dir.path().into()),
            workers: Some(4),
            batch_size: Some(7),
            cluster: Some(ClusterFile {
                processes: Some(3),
                process_env: Some("SLURM_PROCID".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cli = ShardFile {
            workers: Some(2),
            ..Default::default()
        };
        let env = |k: &str| (k == "SLURM_PROCID").then(|| "2".to_string());
        let cfg = ShardConfig::resolve(cli.or(file), &env).unwrap();
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.batch_size, 7);
        assert_eq!(cfg.cluster.process, 2);
        assert_eq!(cfg.cluster.processes, 3);
        assert_eq!(
            cfg.cluster.addresses,
            ["localhost:2101", "localhost:2102", "localhost:2103"]
        );
    }

    #[test]
    fn huge_values_are_shortened_in_messages() {
        let huge = "a".repeat(10 << 20);
        let f = ShardFile {
            device: Some(huge.clone()),
            t5_dtype: Some(format!("\u{1b}[2J{huge}")),
            listing: Some(huge.clone()),
            index: Some(vec![huge.clone()]),
            remap_clip_location: Some(vec![huge.clone()]),
            annotation_version: Some(format!("{huge}/x")),
            input_clip_path: Some(format!("ftp://{huge}")),
            output_dataset_path: Some(huge.clone()),
            t5_model: Some(PathBuf::from(&huge)),
            cluster: Some(ClusterFile {
                processes: Some(2),
                addresses: Some(vec![huge.clone(), "b:1".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
        for key in [
            "device (--device): expected cpu, cuda or cuda:N, got \"aaaa",
            "t5_dtype (--t5-dtype): expected fp32, bf16 or fp16, got \"\\u{1b}[2Jaaa",
            "listing (--listing)",
            "index (--index)",
            "remap_clip_location[0]",
            "annotation_version (--annotation-version): \"aaaa",
            "input_clip_path (--input-clip-path): ftp://aaaa",
            "t5_model (--t5-model): aaaa",
            "cluster.addresses[0]: \"aaaa",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(key)),
                "{key} missing in {:?}",
                errs.iter()
                    .map(|e| e.chars().take(200).collect::<String>())
                    .collect::<Vec<_>>()
            );
        }
        for e in &errs {
            let head: String = e.chars().take(200).collect();
            assert!(e.len() < 1024, "{} bytes: {head}", e.len());
            assert!(!e.contains('\u{1b}'), "{head}");
        }
        let device = errs.iter().find(|e| e.starts_with("device")).unwrap();
        assert!(
            device.ends_with(&format!("… ({} bytes)", huge.len())),
            "{device}"
        );
        // short values are echoed as before
        let f = ShardFile {
            device: Some("gpu".into()),
            ..Default::default()
        };
        let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
        assert!(
            errs.contains(&"device (--device): expected cpu, cuda or cuda:N, got \"gpu\"".into()),
            "{errs:?}"
        );
    }

    #[test]
    fn version_rule() {
        for bad in ["", ".", "..", "../x", "a/b", "/v0"] {
            let e = check_version(bad).unwrap_err();
            assert!(e.contains("is not a directory name"), "{e}");
        }
        for good in ["v0", "v1.2", "..v", "x..y"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn remap_parsing() {
        assert_eq!(
            parse_remap("/a=/b").unwrap(),
            ("/a".to_string(), "/b".to_string())
        );
        assert_eq!(
            parse_remap("/a=").unwrap(),
            ("/a".to_string(), String::new())
        );
        assert!(parse_remap("=/b").is_err());
        assert!(parse_remap("nope").is_err());
    }
}
