//! [`ShardConfig::validate`]: every field checked, every problem reported with its option.

use super::resolve::{check_version, unechoed};
use super::ShardConfig;
use crate::model::{DeviceSpec, Precision};
use crate::storage::Location;
use crate::text::shown;

impl ShardConfig {
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
}
