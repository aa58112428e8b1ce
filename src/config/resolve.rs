//! [`ShardConfig::resolve`]: merged raw options → a validated config, defaults filled.

use super::{
    Cluster, ClusterSection, Indexes, Listing, SemanticDedup, ShardConfig, ShardOptions,
    StorageSection,
};
use crate::layout::{EmbeddingName, OutputLayout, StreamNames};
use crate::model::{DeviceSpec, Precision};
use crate::spec::BinSpec;
use crate::storage::StorageOptions;
use crate::text::{shown, shown_quoted, shown_within, SHOWN_CHARS};

impl ShardConfig {
    /// Builds a config from merged options, filling defaults and checking everything that can
    /// be checked without loading the model: every problem is returned, each as
    /// `key (--flag): what is wrong`. `env` looks up environment variables.
    pub fn resolve(
        f: ShardOptions,
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
        let cluster = resolve_cluster(f.cluster, env, &mut errors);
        let storage = resolve_storage(
            f.storage,
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
        let layout = match OutputLayout::parse(f.layout.as_deref().unwrap_or("reference")) {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!(
                    "layout (--layout): {}",
                    unechoed(&e, f.layout.as_deref().unwrap_or_default())
                ));
                OutputLayout::Reference
            }
        };
        let metrics_listen = f.metrics_listen.as_deref().and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| {
                    errors.push(format!(
                        "metrics_listen (--metrics-listen): {} is not an IP address and port, e.g. 127.0.0.1:9184",
                        shown_quoted(a)
                    ))
                })
                .ok()
        });
        let mut cfg = ShardConfig {
            input: f.input_clip_path.unwrap_or_default(),
            output: f.output_dataset_path.unwrap_or_default(),
            version: f.annotation_version.unwrap_or_else(|| "v0".into()),
            model_dir: f.t5_model.unwrap_or_default(),
            workers: f.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
            batch_size: f.batch_size.unwrap_or(default_batch_size(device)),
            max_batch_tokens: f
                .max_batch_tokens
                .unwrap_or(default_max_batch_tokens(device)),
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
            gathered_plan: std::env::var("SHARDFLOW_PLANNER").is_ok_and(|v| v == "gathered"),
            index,
            layout,
            names: StreamNames::REFERENCE,
            metrics_listen,
        };
        cfg.names = match cfg.embedding_of_model() {
            Ok(e) => layout.stream_names(e),
            Err(e) => {
                errors.push(format!("t5_model (--t5-model): {e}"));
                StreamNames::REFERENCE
            }
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
}

impl ShardConfig {
    /// The embedding stream's name for the model: `umt5_xxl` when its `config.json` says
    /// `"model_type": "umt5"`. Read only where the name follows the encoder (the
    /// cosmos-predict2.5 layout) and the model directory exists (else validation names it).
    fn embedding_of_model(&self) -> Result<EmbeddingName, crate::model::ModelError> {
        use crate::model::t5::{ModelType, T5Config};
        if self.layout.stream_names(EmbeddingName::Umt5Xxl) == StreamNames::REFERENCE
            || !self.model_dir.is_dir()
        {
            return Ok(EmbeddingName::T5Xxl);
        }
        let config = T5Config::load(&self.model_dir.join("config.json"))?;
        Ok(match config.model_type {
            ModelType::Umt5 => EmbeddingName::Umt5Xxl,
            ModelType::T5 => EmbeddingName::T5Xxl,
        })
    }

    /// Makes relative `--remap-clip-location` targets and `--allowed-clip-roots` absolute
    /// against the working directory: a relative path on the command line means the user's
    /// working directory, not the input root. URLs, absolute paths and an empty remap target
    /// stay as they are. The error says which option could not be resolved, and why.
    pub fn absolutize_paths(&mut self) -> Result<(), String> {
        for (_, to) in self.remaps.iter_mut() {
            if !to.is_empty() {
                absolutize(to).map_err(|e| format!("resolving --remap-clip-location: {e}"))?;
            }
        }
        for root in self.allowed_clip_roots.iter_mut() {
            absolutize(root).map_err(|e| format!("resolving --allowed-clip-roots: {e}"))?;
        }
        Ok(())
    }
}

/// `path` made absolute against the working directory, unless it is a URL or already absolute.
fn absolutize(path: &mut String) -> std::io::Result<()> {
    if !(path.contains("://") || std::path::Path::new(path.as_str()).is_absolute()) {
        *path = std::path::absolute(path.as_str())?
            .to_string_lossy()
            .into_owned();
    }
    Ok(())
}

fn resolve_storage(
    s: StorageSection,
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
    c: ClusterSection,
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
    let peer_timeout_s = c.peer_timeout_s.unwrap_or(30);
    if peer_timeout_s == 0 {
        errors.push("cluster.peer_timeout_s (--peer-timeout-s): must be at least 1".into());
    }
    Cluster {
        processes: processes.max(1),
        process,
        addresses,
        connect_timeout_s: c.connect_timeout_s.unwrap_or(120),
        peer_timeout_s,
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
pub(super) fn unechoed(message: &str, value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS && shown(value) == value {
        return message.to_owned();
    }
    let message = message
        .replace(&format!("{value:?}"), &shown_quoted(value))
        .replace(value, &shown(value));
    shown_within(&message, MESSAGE_CHARS)
}

/// Caption windows per encoder batch when none is given: a CPU encodes small batches as fast
/// as large ones, while a GPU needs thousands of rows per kernel to be busy.
pub fn default_batch_size(device: DeviceSpec) -> usize {
    match device {
        DeviceSpec::Cpu => 16,
        DeviceSpec::Cuda(_) => 512,
    }
}

/// Tokens per encoder batch when none is given (see [`default_batch_size`]). On a GPU a batch
/// runs as length-sorted padded groups of at most
/// [`crate::model::t5::PADDED_GROUP_TOKENS`] tokens, queued back to back.
pub fn default_max_batch_tokens(device: DeviceSpec) -> usize {
    match device {
        DeviceSpec::Cpu => 4096,
        DeviceSpec::Cuda(_) => 131_072,
    }
}
