//! Live job metrics for `--metrics-listen`: counters the operators update as they go (relaxed
//! atomics: a few adds per batch, no lock on the way of a clip), a snapshot of them, and its
//! rendering in Prometheus' text exposition format (version 0.0.4), served by [`serve`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::record::RejectKind;

pub mod serve;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The stages the job times (`StageClock`), each with a lock-free counter; a stage not listed
/// here is still counted, behind a lock (it costs one per timed activation, not per clip).
pub const STAGES: [&str; 10] = [
    "list",
    "read_meta",
    "plan_keys",
    "plan_bins",
    "assign_tars",
    "reload_meta",
    "batch",
    "encode",
    "write_tar",
    "finalize",
];

/// A process's counters, shared by its workers. Counters only grow; the gauge goes both ways.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Samples appended to a tar triple by the writers.
    pub samples_written: AtomicU64,
    /// Caption windows run through the encoder.
    pub windows_encoded: AtomicU64,
    /// Tokens run through the encoder (`</s>` included).
    pub tokens_encoded: AtomicU64,
    /// Bytes of the tar triples the writers completed.
    pub bytes_written: AtomicU64,
    /// Tar triples the writers completed.
    pub tars_completed: AtomicU64,
    /// Clips queued in `batch`, waiting to be cut into encoder batches (a gauge).
    pub batch_queued: AtomicU64,
    /// Rejects seen so far, indexed as [`RejectKind::ALL`].
    rejects: [AtomicU64; RejectKind::ALL.len()],
    /// Nanoseconds spent per stage of [`STAGES`], summed over workers.
    stage_nanos: [AtomicU64; STAGES.len()],
    /// Nanoseconds of the stages not in [`STAGES`].
    other_stages: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one reject of `kind`.
    pub fn reject(&self, kind: RejectKind) {
        self.rejects[kind as usize].fetch_add(1, Relaxed);
    }

    /// Adds `spent` to `stage`'s busy time.
    pub fn add_stage(&self, stage: &'static str, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        match STAGES.iter().position(|s| *s == stage) {
            Some(i) => {
                self.stage_nanos[i].fetch_add(nanos, Relaxed);
            }
            None => {
                let mut other = self.other_stages.lock().expect("not poisoned");
                *other.entry(stage).or_default() += nanos;
            }
        }
    }

    /// Adds `n` to a counter (a shorthand for the operators).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The counters now, `planned_clips` left at 0 (the progress display holds it).
    pub fn snapshot(&self) -> Snapshot {
        let stage_seconds: BTreeMap<String, f64> = STAGES
            .iter()
            .zip(&self.stage_nanos)
            .map(|(s, n)| (s.to_string(), n.load(Relaxed)))
            .chain(
                self.other_stages
                    .lock()
                    .expect("not poisoned")
                    .iter()
                    .map(|(s, n)| (s.to_string(), *n)),
            )
            // a stage never timed in this job is left out
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (s, n as f64 / 1e9))
            .collect();
        Snapshot {
            planned_clips: 0,
            samples_written: self.samples_written.load(Relaxed),
            windows_encoded: self.windows_encoded.load(Relaxed),
            tokens_encoded: self.tokens_encoded.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            tars_completed: self.tars_completed.load(Relaxed),
            batch_queued_clips: self.batch_queued.load(Relaxed),
            rejects: RejectKind::ALL
                .iter()
                .zip(&self.rejects)
                .map(|(k, n)| (k.as_str().to_string(), n.load(Relaxed)))
                .collect(),
            stage_seconds,
        }
    }
}

/// The metrics at one moment, as plain numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Clips planned for writing.
    pub planned_clips: u64,
    /// Samples appended to tars.
    pub samples_written: u64,
    /// Caption windows encoded.
    pub windows_encoded: u64,
    /// Tokens encoded.
    pub tokens_encoded: u64,
    /// Bytes of the completed tar triples.
    pub bytes_written: u64,
    /// Tar triples completed.
    pub tars_completed: u64,
    /// Clips queued in `batch`.
    pub batch_queued_clips: u64,
    /// Rejects per reason (every reason, 0 included).
    pub rejects: BTreeMap<String, u64>,
    /// Busy seconds per stage timed so far.
    pub stage_seconds: BTreeMap<String, f64>,
}

/// `snapshot` in Prometheus' text exposition format 0.0.4: per metric a `# HELP` and a
/// `# TYPE` line, then its samples, `name{label="value"} number`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let mut scalar = |name: &str, kind: &str, help: &str, value: u64| {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "shardflow_{name} {value}");
    };
    let s = snapshot;
    scalar(
        "planned_clips_total",
        "counter",
        "Clips planned for writing.",
        s.planned_clips,
    );
    scalar(
        "samples_written_total",
        "counter",
        "Samples appended to tar triples by this process's writers.",
        s.samples_written,
    );
    scalar(
        "windows_encoded_total",
        "counter",
        "Caption windows run through the text encoder.",
        s.windows_encoded,
    );
    scalar(
        "tokens_encoded_total",
        "counter",
        "Tokens run through the text encoder.",
        s.tokens_encoded,
    );
    scalar(
        "bytes_written_total",
        "counter",
        "Bytes of the tar triples completed by this process's writers.",
        s.bytes_written,
    );
    scalar(
        "tars_completed_total",
        "counter",
        "Tar triples completed by this process's writers.",
        s.tars_completed,
    );
    scalar(
        "batch_queued_clips",
        "gauge",
        "Clips queued in batch, waiting for the encoder.",
        s.batch_queued_clips,
    );
    family(
        &mut out,
        "rejects_total",
        "counter",
        "Inputs rejected so far, per reason.",
    );
    for (reason, n) in &s.rejects {
        let _ = writeln!(
            out,
            "shardflow_rejects_total{{reason=\"{}\"}} {n}",
            escaped(reason)
        );
    }
    family(
        &mut out,
        "stage_busy_seconds_total",
        "counter",
        "Seconds spent in each stage, summed over this process's workers.",
    );
    for (stage, secs) in &s.stage_seconds {
        let _ = writeln!(
            out,
            "shardflow_stage_busy_seconds_total{{stage=\"{}\"}} {secs}",
            escaped(stage)
        );
    }
    out
}

/// The `# HELP` and `# TYPE` lines of `shardflow_<name>`.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP shardflow_{name} {help}");
    let _ = writeln!(out, "# TYPE shardflow_{name} {kind}");
}

/// A label value as the format writes it: `\`, `"` and newlines escaped.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
