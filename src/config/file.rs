//! The `--config` TOML file. Every command-line option of `shard` has a top-level key of the
//! same name in snake_case; the cluster settings form the `[cluster]` section. Unknown keys
//! are errors, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::text::{shown, shown_within, SHOWN_CHARS};

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
    /// Write the clips even when not one window has its `<algorithm>_caption` (default
    /// false: such a run is refused, the caption field being most likely misspelt).
    pub allow_no_captions: Option<bool>,
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

/// Longest message about one key, in characters.
const MESSAGE_CHARS: usize = 800;

impl ShardFile {
    /// Reads and parses a config file; relative paths in it are taken relative to the file's
    /// directory. Every wrong-typed or unknown key is reported (see [`ShardFile::load_all`]),
    /// one per line after the first.
    pub fn load(path: &Path) -> Result<ShardFile, String> {
        Self::load_all(path).map_err(|errors| match errors.as_slice() {
            [one] => format!("{}: {one}", path.display()),
            many => format!(
                "{}: {} problems:\n  {}",
                path.display(),
                many.len(),
                many.join("\n  ")
            ),
        })
    }

    /// [`ShardFile::load`] with every problem apart, each starting with its key path.
    pub fn load_all(path: &Path) -> Result<ShardFile, Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![e.to_string()])?;
        let mut file = Self::parse(&text)?;
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

    /// Parses the text of a config file (paths as written). A syntax error is one problem;
    /// otherwise every wrong-typed or unknown key is a problem of its own, `key.path: what`,
    /// where serde alone stops at the first. Values are echoed shortened ([`shown`]).
    pub fn parse(text: &str) -> Result<ShardFile, Vec<String>> {
        let first = match toml::from_str::<ShardFile>(text) {
            Ok(file) => return Ok(file),
            Err(e) => e,
        };
        // serde stops at the first problem: check every key on its own
        let Ok(table) = toml::from_str::<toml::Table>(text) else {
            return Err(vec![located(text, &first)]);
        };
        let mut errors = Vec::new();
        check_entries(&[], &table, &mut errors);
        if errors.is_empty() {
            errors.push(located(text, &first));
        }
        Err(errors)
    }
}

/// A message cut to [`MESSAGE_CHARS`], control characters escaped.
fn capped(message: &str) -> String {
    shown_within(message, MESSAGE_CHARS)
}

/// `line L, column C: what`, without echoing the line (it may be megabytes long).
fn located(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return capped(e.message());
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!(
        "line {line}, column {column}: {}",
        capped(e.message().trim_end())
    )
}

/// `value` wrapped into the tables named by `path`: `{a: {b: value}}` for `path` `[a, b]`.
fn wrapped(path: &[&str], value: toml::Value) -> toml::Value {
    path.iter().rev().fold(value, |inner, key| {
        let mut t = toml::Table::new();
        t.insert((*key).to_owned(), inner);
        toml::Value::Table(t)
    })
}

/// Why `value` at `path` does not deserialize as part of a [`ShardFile`], if it does not.
fn entry_error(path: &[&str], value: &toml::Value) -> Option<String> {
    let e = wrapped(path, value.clone()).try_into::<ShardFile>().err()?;
    // the same check on a copy whose key and strings are shortened, for a message that does
    // not echo megabytes (the type of every value, hence the error, stays the same)
    let short_path: Vec<String> = path.iter().map(|k| shortened(k)).collect();
    let short_path: Vec<&str> = short_path.iter().map(String::as_str).collect();
    let message = match wrapped(&short_path, short_strings(value)).try_into::<ShardFile>() {
        Err(short) => short.message().to_owned(),
        Ok(_) => e.message().to_owned(),
    };
    Some(capped(&message))
}

/// `s` cut to [`SHOWN_CHARS`] characters, marked with `…` and its length when cut.
fn shortened(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// `value` with every string [`shortened`].
fn short_strings(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::String(s) => toml::Value::String(shortened(s)),
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(short_strings).collect()),
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| (shortened(k), short_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks every entry of `table` (at key path `path`) on its own, appending
/// `key.path: what is wrong` for each wrong-typed or unknown key. A table that fails is looked
/// into (sections such as `[cluster]`, whose fields are all optional, so one key alone is a
/// valid section); an array that fails, element by element (`bins.resolution[1]: ...`).
fn check_entries(path: &[&str], table: &toml::Table, errors: &mut Vec<String>) {
    for (key, value) in table {
        let mut at: Vec<&str> = path.to_vec();
        at.push(key);
        let Some(message) = entry_error(&at, value) else {
            continue;
        };
        let before = errors.len();
        match value {
            toml::Value::Table(inner) => check_entries(&at, inner, errors),
            toml::Value::Array(items) if items.len() > 1 => {
                for (i, item) in items.iter().enumerate() {
                    let one = toml::Value::Array(vec![item.clone()]);
                    if let Some(m) = entry_error(&at, &one) {
                        errors.push(format!("{}[{i}]: {m}", key_path(&at)));
                    }
                }
            }
            _ => {}
        }
        if errors.len() == before {
            errors.push(format!("{}: {message}", key_path(&at)));
        }
    }
}

/// `a.b.c`, each key [`shown`].
fn key_path(path: &[&str]) -> String {
    path.iter().map(|k| shown(k)).collect::<Vec<_>>().join(".")
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
    fn every_wrong_type_is_reported_with_its_key() {
        let text = "workers = \"x\"\nbatch_size = \"y\"\ntarget_tar_size_mb = \"z\"\n\
                    device = \"cpu\"\n";
        let errs = ShardFile::parse(text).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:#?}");
        for (key, value) in [
            ("workers", "\"x\""),
            ("batch_size", "\"y\""),
            ("target_tar_size_mb", "\"z\""),
        ] {
            let prefix = format!("{key}: invalid type: string {value}");
            assert!(
                errs.iter().any(|e| e.starts_with(&prefix)),
                "{prefix} missing in {errs:#?}"
            );
        }
        // through load: one message, one problem per line
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let err = ShardFile::load(&p).unwrap_err();
        assert!(err.contains("3 problems"), "{err}");
        assert_eq!(err.lines().count(), 4, "{err}");
    }

    #[test]
    fn sections_and_unknown_keys_are_reported_together() {
        let text = "workerz = 1\nworkers = -1\nindex = [\"dali\", 3]\n\
                    [cluster]\nprocesses = \"two\"\nhosts = []\nprocess = 0\n\
                    [storage]\nmax_retries = 1.5\n\
                    [bins]\nlength = \"frames\"\n\
                    resolution = [ { min_short_side = 720, name = \"hd\" }, { min_short_side = 0 } ]\n";
        let errs = ShardFile::parse(text).unwrap_err();
        for key in [
            "workerz: unknown field",
            "workers: invalid value",
            "index[1]: invalid type",
            "cluster.processes: invalid type",
            "cluster.hosts: unknown field",
            "storage.max_retries: invalid type",
            "bins.length: unknown variant",
            "bins.resolution[1]: missing field `name`",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(key)), "{key}: {errs:#?}");
        }
        assert_eq!(errs.len(), 8, "{errs:#?}");
        // valid sections parse as before
        let f =
            ShardFile::parse("workers = 2\n[cluster]\nprocesses = 2\n[storage]\nmax_retries = 3\n")
                .unwrap();
        assert_eq!(f.workers, Some(2));
        assert_eq!(f.cluster.unwrap().processes, Some(2));
        assert_eq!(f.storage.unwrap().max_retries, Some(3));
    }

    #[test]
    fn huge_or_binary_values_are_not_echoed() {
        let huge = "a".repeat(10 << 20);
        let n = huge.len();
        for (text, shows, bytes) in [
            (
                format!("workers = \"{huge}\"\n"),
                "workers: invalid type: string \"aaaa",
                Some(n),
            ),
            (
                format!("captioning_algorithm = [\"{huge}\"]\n"),
                "captioning_algorithm: invalid type: sequence",
                None,
            ),
            (format!("{huge} = 1\n"), "unknown field `aaaa", Some(n)),
            (
                format!("[bins]\nlength = \"{huge}\"\n"),
                "bins.length: unknown variant `aaaa",
                Some(n),
            ),
            (format!("workers = 1 {huge}\n"), "line 1, column 1", None),
            (
                format!("workers = \"\\u0000\\u001b[31m{huge}\"\n"),
                "workers: invalid type: string \"\\0\\u{1b}[31maaaa",
                Some(n + 6),
            ),
        ] {
            let errs = ShardFile::parse(&text).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            let e = &errs[0];
            let head: String = e.chars().take(300).collect();
            assert!(e.len() < 1024, "{} bytes: {head}", e.len());
            assert!(!e.contains('\u{0}') && !e.contains('\u{1b}'), "{head}");
            assert!(
                e.starts_with(shows) || e.contains(shows),
                "{shows} not in {head}"
            );
            if let Some(bytes) = bytes {
                assert!(e.contains(&format!("({bytes} bytes)")), "{head}");
            }
        }
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
