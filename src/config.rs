//! Job configuration: options → a validated [`ShardConfig`]. Validation reports every
//! problem at once, each with the option it is about.

use std::path::PathBuf;

use crate::model::{DeviceSpec, Precision};

/// A validated `shard` job.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardConfig {
    /// `<input-clip-path>`: holds `metas/<version>/` (and usually `clips/`).
    pub input: PathBuf,
    /// `<output-dataset-path>`, as the user wrote it (it appears in `wdinfo` files).
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
}

impl ShardConfig {
    /// Checks every field; returns all problems at once, each naming its option.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.workers == 0 {
            errors.push("--workers: must be at least 1".to_string());
        }
        if self.batch_size == 0 {
            errors.push("--batch-size: must be at least 1".to_string());
        }
        if self.max_batch_tokens < 512 {
            errors.push(format!(
                "--max-batch-tokens: must be at least 512 (one full caption), got {}",
                self.max_batch_tokens
            ));
        }
        if self.device == DeviceSpec::Cpu && self.precision != Precision::Fp32 {
            errors.push(
                "--t5-dtype: bf16 and fp16 need --device cuda; the CPU backend computes in fp32"
                    .to_string(),
            );
        }
        if !(self.target_tar_size_mb.is_finite() && self.target_tar_size_mb > 0.0) {
            errors.push(format!(
                "--target-tar-size-mb: must be a positive number, got {}",
                self.target_tar_size_mb
            ));
        }
        if self.max_tars_per_part == 0 {
            errors.push("--max-tars-per-part: must be at least 1".to_string());
        }
        if self.version.is_empty()
            || self.version.contains('/')
            || self.version == ".."
            || self.version == "."
        {
            errors.push(format!(
                "--annotation-version: {:?} is not a directory name",
                self.version
            ));
        }
        if self.captioning_algorithm.is_empty() {
            errors.push("--captioning-algorithm: must not be empty".to_string());
        }
        if self.output.is_empty() {
            errors.push("--output-dataset-path: must not be empty".to_string());
        }
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

    /// `<input>/metas/<version>`.
    pub fn meta_dir(&self) -> PathBuf {
        self.input.join("metas").join(&self.version)
    }

    /// `<output>/<version>` on disk.
    pub fn version_dir(&self) -> PathBuf {
        PathBuf::from(&self.output).join(&self.version)
    }

    /// `<output>/<version>` as written into `wdinfo` files.
    pub fn display_version_dir(&self) -> String {
        format!("{}/{}", self.output.trim_end_matches('/'), self.version)
    }
}

/// Parses `FROM=TO`.
pub fn parse_remap(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() => Ok((from.to_string(), to.to_string())),
        _ => Err(format!("expected FROM=TO with a non-empty FROM, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ShardConfig {
        ShardConfig {
            input: "in".into(),
            output: "out/".into(),
            version: "v0".into(),
            model_dir: "m".into(),
            workers: 2,
            batch_size: 8,
            max_batch_tokens: 4096,
            device: DeviceSpec::Cpu,
            precision: Precision::Fp32,
            target_tar_size_mb: 500.0,
            max_tars_per_part: 100,
            captioning_algorithm: "qwen".into(),
            remaps: vec![],
        }
    }

    #[test]
    fn valid_config_and_derived_paths() {
        let c = cfg();
        assert!(c.validate().is_ok());
        assert_eq!(c.target_tar_bytes(), 500 * 1024 * 1024);
        assert_eq!(c.display_version_dir(), "out/v0");
        assert_eq!(c.meta_dir(), PathBuf::from("in/metas/v0"));
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
                errs.iter().any(|e| e.starts_with(opt)),
                "{opt} missing in {errs:?}"
            );
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
