//! `shardflow bench`: a synthetic (or sampled real) input for a timed shard job, and the
//! figures made from its report: rates, each stage's share of the workers' time, the stage
//! that bounds the job, and the hours a project of a given size would take.

mod synth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use synth::{caption, generate, Generated, SplitMix, SyntheticSpec};

use crate::error::ShardError;
use crate::report::{JobReport, MilestoneSeconds};

/// The machine and settings a bench ran with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchSetup {
    /// `synthetic`, or the real input's path.
    pub input: String,
    /// The model directory.
    pub model: String,
    /// The encoder's device (`cpu`, `cuda:0`).
    pub device: String,
    /// The encoder's precision.
    pub t5_dtype: String,
    /// Worker threads.
    pub workers: usize,
    /// The CPU, as `lscpu` names it.
    pub cpu: String,
    /// Clips of the project the extrapolation is for.
    pub project_clips: u64,
}

/// `shardflow bench --json`: one object, these keys, always present (a milestone not reached
/// is `null`, a bounding stage of a job with no stage time is `null`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Settings and machine.
    #[serde(flatten)]
    pub setup: BenchSetup,
    /// Metadata files listed (the clips of the input).
    pub clips: u64,
    /// Clips written.
    pub clips_written: u64,
    /// Clips not written: invalid, in no bin, rejected, dropped by filters.
    pub clips_not_written: u64,
    /// Caption windows embedded.
    pub captions: u64,
    /// Tokens encoded (`</s>` included).
    pub tokens: u64,
    /// Bytes of the tars written.
    pub bytes_written: u64,
    /// The job's wall seconds, model loading included.
    pub wall_seconds: f64,
    /// Seconds spent loading the model.
    pub model_load_seconds: f64,
    /// `wall_seconds - model_load_seconds`: the time the rates are computed over.
    pub steady_seconds: f64,
    /// Clips written per steady second.
    pub clips_per_second: f64,
    /// Captions embedded per steady second.
    pub captions_per_second: f64,
    /// Tokens encoded per steady second.
    pub tokens_per_second: f64,
    /// MB (10^6 bytes) of tars written per steady second.
    pub mb_per_second_written: f64,
    /// Busy seconds of each stage (operator), summed over the workers.
    pub stage_seconds: BTreeMap<String, f64>,
    /// Each stage's busy seconds over `wall_seconds × workers` (0..1).
    pub stage_share: BTreeMap<String, f64>,
    /// The stage with the largest share: what bounds the job.
    pub bounding_stage: Option<String>,
    /// Seconds from the job's start to its milestones.
    pub milestone_seconds: MilestoneSeconds,
    /// Hours `project_clips` clips would take at `clips_per_second` (plus one model load).
    pub project_hours: Option<f64>,
}

/// Hours `clips` clips take at `clips_per_second`, plus `fixed_seconds` once; `None` when
/// nothing was written (no rate to extrapolate from).
pub fn extrapolate_hours(clips: u64, clips_per_second: f64, fixed_seconds: f64) -> Option<f64> {
    (clips_per_second > 0.0 && clips_per_second.is_finite())
        .then(|| (clips as f64 / clips_per_second + fixed_seconds) / 3600.0)
}

/// The bench's figures from the job's report and the seconds the model took to load.
pub fn summarize(setup: BenchSetup, report: &JobReport, model_load_seconds: f64) -> BenchReport {
    let c = &report.counts;
    let wall = report.wall_seconds;
    // rates over the job without the model load, which a long run pays once
    let steady = (wall - model_load_seconds).max(1e-9);
    let rate = |n: u64| n as f64 / steady;
    let capacity = (wall * report.workers.max(1) as f64).max(1e-9);
    let stage_share: BTreeMap<String, f64> = report
        .stage_seconds
        .iter()
        .map(|(k, v)| (k.clone(), v / capacity))
        .collect();
    let bounding_stage = report
        .stage_seconds
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, _)| k.clone());
    let clips_per_second = rate(c.written);
    BenchReport {
        project_hours: extrapolate_hours(setup.project_clips, clips_per_second, model_load_seconds),
        setup,
        clips: c.listed,
        clips_written: c.written,
        clips_not_written: c.listed - c.written.min(c.listed),
        captions: c.windows_embedded,
        tokens: c.tokens_embedded,
        bytes_written: c.bytes,
        wall_seconds: wall,
        model_load_seconds,
        steady_seconds: steady,
        clips_per_second,
        captions_per_second: rate(c.windows_embedded),
        tokens_per_second: rate(c.tokens_embedded),
        mb_per_second_written: rate(c.bytes) / 1e6,
        stage_seconds: report.stage_seconds.clone(),
        stage_share,
        bounding_stage,
        milestone_seconds: report.milestone_seconds.clone(),
    }
}

/// The report as text for a terminal.
pub fn render_text(r: &BenchReport) -> String {
    let s = &r.setup;
    let mut out = format!(
        "machine: {} | device {} | {} | {} workers\nmodel: {}\ninput: {}\n",
        s.cpu, s.device, s.t5_dtype, s.workers, s.model, s.input
    );
    out += &format!(
        "clips: {} listed, {} written, {} not written; {} captions, {} tokens, {:.1} MB of tars\n",
        r.clips,
        r.clips_written,
        r.clips_not_written,
        r.captions,
        r.tokens,
        r.bytes_written as f64 / 1e6
    );
    out += &format!(
        "time: {:.2} s wall = {:.2} s model load + {:.2} s steady\n",
        r.wall_seconds, r.model_load_seconds, r.steady_seconds
    );
    out += &format!(
        "rates (steady): {:.1} clips/s, {:.1} captions/s, {:.0} tokens/s, {:.1} MB/s written\n",
        r.clips_per_second, r.captions_per_second, r.tokens_per_second, r.mb_per_second_written
    );
    out += &format!(
        "stages (busy seconds summed over workers; share of {:.2} s x {} workers):\n",
        r.wall_seconds, s.workers
    );
    let mut stages: Vec<_> = r.stage_seconds.iter().collect();
    stages.sort_by(|a, b| b.1.total_cmp(a.1));
    for (name, secs) in stages {
        let mark = if r.bounding_stage.as_deref() == Some(name) {
            "  <- bounds the job"
        } else {
            ""
        };
        out += &format!(
            "  {name:<16} {secs:>9.2} s {:>6.1} %{mark}\n",
            100.0 * r.stage_share.get(name).copied().unwrap_or(0.0)
        );
    }
    let m = &r.milestone_seconds;
    let shown = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
    out += &format!(
        "milestones: planned {}, first caption encoded {}, first tar completed {}\n",
        shown(m.planned),
        shown(m.first_caption_encoded),
        shown(m.first_tar_completed)
    );
    out += &match r.project_hours {
        Some(h) => format!(
            "{} clips ≈ {h:.1} hours on this machine (at {:.1} clips/s steady, plus one model load)\n",
            s.project_clips, r.clips_per_second
        ),
        None => format!(
            "{} clips: no estimate (no clip was written)\n",
            s.project_clips
        ),
    };
    out
}

/// Copies the first `n` metadata files of `<input>/metas/<version>/` (in path order) into
/// `<into>/metas/<version>/` under the same relative paths, and links every other top-level
/// entry of `input` (e.g. `clips/`) into `into`, so that relative `clip_location`s resolve to
/// the real clips. `input` is only read. Returns the files copied.
pub fn sample_real_input(
    input: &Path,
    version: &str,
    n: u64,
    into: &Path,
) -> Result<u64, ShardError> {
    let metas = input.join("metas").join(version);
    let mut files = vec![];
    let mut stack = vec![metas.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| ShardError::io(&d, e))? {
            let p = e.map_err(|e| ShardError::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files.truncate(n as usize);
    for f in &files {
        let rel = f.strip_prefix(&metas).expect("listed below metas");
        let dst: PathBuf = into.join("metas").join(version).join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ShardError::io(parent, e))?;
        }
        std::fs::copy(f, &dst).map_err(|e| ShardError::io(f, e))?;
    }
    for e in std::fs::read_dir(input).map_err(|e| ShardError::io(input, e))? {
        let e = e.map_err(|e| ShardError::io(input, e))?;
        if e.file_name() == "metas" {
            continue;
        }
        let dst = into.join(e.file_name());
        std::os::unix::fs::symlink(e.path(), &dst).map_err(|err| ShardError::io(&dst, err))?;
    }
    Ok(files.len() as u64)
}

/// [`sample_real_input`] for an input on an object store: downloads the first `n` metadata
/// files of `<input>/metas/<version>/` (in path order) into `<into>/metas/<version>/`; a
/// relative `clip_location` is rewritten to the clip's absolute location under `input` (where
/// the job would resolve it), so the clips are read from the store where they are. A file that
/// is not a JSON object is copied as it is (the job rejects it, as it would in a real run).
/// `input` is only read. Returns the files copied.
pub fn sample_remote_input(
    storage: &crate::storage::Storage,
    input: &crate::storage::Location,
    version: &str,
    n: u64,
    into: &Path,
) -> Result<u64, ShardError> {
    use crate::formats::pyjson::{self, PyValue};
    let metas = input.join(&format!("metas/{version}"));
    let mut listed: Vec<String> = storage
        .list(&metas)?
        .into_iter()
        .filter(|l| l.error.is_none())
        .map(|l| l.rel)
        .collect();
    listed.sort();
    listed.truncate(n as usize);
    let locations: Vec<_> = listed.iter().map(|rel| metas.join(rel)).collect();
    for ((rel, loc), bytes) in listed
        .iter()
        .zip(&locations)
        .zip(storage.read_many(&locations))
    {
        let bytes = bytes?;
        let out = match pyjson::parse(&bytes) {
            Ok(mut meta) => {
                let relative = meta
                    .get("clip_location")
                    .and_then(PyValue::as_str)
                    .filter(|l| !l.contains("://") && !l.starts_with('/'))
                    .map(|l| input.join(l).to_string());
                match relative {
                    Some(absolute) => {
                        meta.set("clip_location", PyValue::Str(absolute));
                        pyjson::dumps_indent4(&meta).into_bytes()
                    }
                    None => bytes.to_vec(),
                }
            }
            Err(_) => bytes.to_vec(),
        };
        let dst = into.join("metas").join(version).join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ShardError::io(parent, e))?;
        }
        std::fs::write(&dst, out).map_err(|e| ShardError::io(&dst, e))?;
        tracing::debug!("sampled {loc}");
    }
    Ok(listed.len() as u64)
}

#[cfg(test)]
mod tests;
