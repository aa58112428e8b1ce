//! The job report: counts that reconcile, stage timings, and the rejects file.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::ShardError;
use crate::metrics::{Metrics, Snapshot};
use crate::record::{BinWritten, PlanSummary, Reject, TarDone};
use crate::storage::{Location, Storage};

/// Live counters shared with the progress display and the metrics endpoint.
#[derive(Debug, Default)]
pub struct Progress {
    /// Clips planned for writing (0 until planning is done).
    pub planned: AtomicU64,
    /// Samples handed to the writers.
    pub written: AtomicU64,
    /// The rest of the live metrics (`--metrics-listen`).
    pub metrics: Metrics,
}

impl Progress {
    /// (written, planned) now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed),
        )
    }

    /// The live metrics now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            planned_clips: self.planned.load(Ordering::Relaxed),
            ..self.metrics.snapshot()
        }
    }
}

/// Counts of the report. `listed = written + invalid + dropped_no_bin + Σ rejected`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Metadata files listed.
    pub listed: u64,
    /// Samples written (with `--append`: the listed clips the output holds, kept or new).
    pub written: u64,
    /// Clips with `valid: false` in their metadata.
    pub invalid: u64,
    /// Clips in no bin.
    pub dropped_no_bin: u64,
    /// Clips left out as semantic duplicates (`--input-semantic-dedup-path`).
    pub removed_semantic_dedup: u64,
    /// Clips of a bin's last tar dropped by `--drop-small-shards`.
    pub dropped_small_tar: u64,
    /// Rejected inputs per reason.
    pub rejected: BTreeMap<String, u64>,
    /// Warnings per kind.
    pub warnings: BTreeMap<String, u64>,
    /// Caption windows embedded.
    pub windows_embedded: u64,
    /// Tokens embedded (`</s>` included).
    pub tokens_embedded: u64,
    /// Caption windows whose embedding was reused from an earlier version (`reshard`),
    /// copied tars included.
    pub windows_reused: u64,
    /// Tar triples written by the job (including those resumed), not copied or kept.
    pub tars: u64,
    /// Tar triples an interrupted run had completed, kept by `--resume`.
    pub tars_resumed: u64,
    /// Tar triples copied unchanged from the earlier version (`reshard`).
    pub tars_copied: u64,
    /// Member tars copied from the earlier version, those of triples copied whole included.
    pub tar_files_copied: u64,
    /// Tar triples already in the output and left as they were (`--append`).
    pub tars_kept: u64,
    /// Bytes of all the output's tars.
    pub bytes: u64,
}

impl Counts {
    /// Whether the counts add up.
    pub fn reconciles(&self) -> bool {
        self.listed
            == self.written
                + self.invalid
                + self.dropped_no_bin
                + self.removed_semantic_dedup
                + self.dropped_small_tar
                + self.rejected.values().sum::<u64>()
    }
}

/// One bin in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BinReport {
    /// Bin path.
    pub bin: String,
    /// Tar triples.
    pub tars: u64,
    /// Samples.
    pub samples: u64,
}

/// `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobReport {
    /// The job: `shard`.
    pub job: String,
    /// Whether the job finished without a fatal error.
    pub ok: bool,
    /// The fatal error, if any.
    pub error: Option<String>,
    /// Counts.
    pub counts: Counts,
    /// Seconds spent in each operator, summed over workers.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Wall-clock seconds of the whole job, model loading included.
    pub wall_seconds: f64,
    /// Seconds from the job's start (as for `wall_seconds`) to its milestones.
    pub milestone_seconds: MilestoneSeconds,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes (stage seconds cover process 0's workers only).
    pub processes: usize,
    /// Bins written, in `wdinfo_list.csv` order.
    pub bins: Vec<BinReport>,
}

/// Seconds from the job's start to each milestone, on process 0 (planning happens there; with
/// several processes the first encode and tar are process 0's own); `null` if not reached (no
/// caption to encode, no tar written, or the job stopped before).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MilestoneSeconds {
    /// Planning complete: every clip has its tar.
    pub planned: Option<f64>,
    /// The first encoder batch with captions to embed encoded.
    pub first_caption_encoded: Option<f64>,
    /// The first tar triple completed by a writer (renamed into place or uploaded).
    pub first_tar_completed: Option<f64>,
}

/// Everything the report is made from, with the rejects in listing order.
pub fn build_counts(plan: &PlanSummary, done: &[TarDone]) -> (Counts, Vec<Reject>) {
    let mut rejects = plan.rejects.clone();
    let mut sorted: Vec<&TarDone> = done.iter().collect();
    sorted.sort_by(|a, b| a.tar.cmp(&b.tar));
    for d in sorted {
        rejects.extend(d.rejects.iter().cloned());
    }
    let mut counts = Counts {
        listed: plan.listed,
        invalid: plan.invalid,
        dropped_no_bin: plan.dropped_no_bin,
        removed_semantic_dedup: plan.removed_semantic_dedup,
        dropped_small_tar: plan.dropped_small_tar,
        warnings: plan
            .warnings
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
        ..Default::default()
    };
    for r in &rejects {
        *counts
            .rejected
            .entry(r.kind.as_str().to_string())
            .or_default() += 1;
    }
    for d in done.iter().filter(|d| d.error.is_none()) {
        counts.written += d.samples;
        counts.windows_embedded += d.windows_embedded;
        counts.tokens_embedded += d.tokens_embedded;
        counts.windows_reused += d.windows_reused;
        counts.tar_files_copied += d.files_copied as u64;
        if d.kept {
            counts.tars_kept += 1;
        } else if d.files_copied == 3 {
            counts.tars_copied += 1;
        } else {
            counts.tars += 1;
        }
        counts.tars_resumed += d.resumed as u64;
        counts.bytes += d.bytes;
    }
    // kept samples of no listed file: counting them would count files that were not listed
    counts.written = counts.written.saturating_sub(plan.kept_unlisted);
    (counts, rejects)
}

/// Bins for the report.
pub fn bin_reports(bins: &[BinWritten]) -> Vec<BinReport> {
    bins.iter()
        .map(|b| BinReport {
            bin: b.bin.clone(),
            tars: b.tars.len() as u64,
            samples: b.samples,
        })
        .collect()
}

/// Writes `report.json` and `rejects.jsonl` into `dir` (atomically, each).
pub fn write_report(
    storage: &Storage,
    dir: &Location,
    report: &JobReport,
    rejects: &[Reject],
) -> Result<(), ShardError> {
    let mut lines = String::new();
    for r in rejects {
        let line = serde_json::json!({
            "meta": r.meta,
            "span_uuid": r.span_uuid,
            "reason": r.kind.as_str(),
            "message": r.message,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    storage.put(&dir.join("rejects.jsonl"), lines.as_bytes())?;
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    storage.put(&dir.join("report.json"), format!("{json}\n").as_bytes())?;
    Ok(())
}
