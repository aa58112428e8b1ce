//! The job runner: the scaffolding every job shares, so that a dataflow in `dataflows/` is
//! only its wiring. It sits below the operators: they receive its [`JobContext`], and it
//! never imports them (the dataflow hands it the wiring and the summary writer).
//!
//! - [`execute`] runs a dataflow's workers (bounding the wait for a cluster's processes to
//!   connect: timely would retry forever) and joins them, turning failures into
//!   [`JobError`](crate::error::JobError)s.
//! - [`Runner`] runs a shard job: the watcher that turns the interrupt flag (raised by the
//!   binary's SIGTERM/SIGINT handlers) into the job's failure, the workers with their
//!   [`JobContext`], the summaries and the report.
//! - [`JobContext`]: what every operator of a worker shares (stage clock, the process's
//!   [`Milestones`], progress, the job's [`FailureSignal`]).
//! - [`tar_mtime`] and [`job_name`]: what a job's tars and report are stamped with.

mod context;
mod execute;
mod runner;

pub use context::{FailureSignal, JobContext, Milestone, Milestones, StageClock, StageTimer};
pub use execute::{execute, Links};
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
