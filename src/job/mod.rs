//! The job runner: the scaffolding every job shares, so that a dataflow in `dataflows/` is
//! only its wiring. It sits between the operators ([`crate::ops`]) and the dataflows.
//!
//! - [`execute`] runs a dataflow's workers (bounding the wait for a cluster's processes to
//!   connect: timely would retry forever) and joins them, turning failures into
//!   [`JobError`](crate::error::JobError)s.
//! - [`Runner`] runs a shard job: the signal watcher, the workers with their
//!   [`JobContext`](crate::ops::JobContext), the summaries and the report.
//! - [`tar_mtime`] and [`job_name`]: what a job's tars and report are stamped with.

mod execute;
mod runner;

pub use execute::execute;
pub use runner::{Gathered, Runner};

use std::time::{SystemTime, UNIX_EPOCH};

use crate::incremental::plan::Mode;

/// The mtime of every tar member: an incremental run's tars carry the earlier output's, so
/// that the tars it copies and the ones it writes agree; otherwise `SOURCE_DATE_EPOCH` (the
/// reproducible-builds convention) pins it, or it is now.
pub fn tar_mtime(incremental: Option<&Mode>) -> u64 {
    let epoch: Option<u64> = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    match (incremental, epoch) {
        (Some(mode), e) => {
            let base = mode.base().job.mtime;
            if e.is_some_and(|e| e != base) {
                tracing::warn!(
                    "SOURCE_DATE_EPOCH ignored: the tars keep the earlier output's mtime {base}"
                );
            }
            base
        }
        (None, Some(t)) => t,
        (None, None) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// The job's name in its report.
pub fn job_name(incremental: Option<&Mode>) -> &'static str {
    match incremental {
        Some(Mode::Reshard { .. }) => "reshard",
        Some(Mode::Append { .. }) => crate::incremental::base::APPEND_JOB,
        None => "shard",
    }
}
