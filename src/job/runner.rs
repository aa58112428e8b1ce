//! The shard job's scaffolding around its dataflow.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::Scope;

use super::{FailureSignal, JobContext, Milestone, Milestones};
use crate::config::ShardConfig;
use crate::error::{JobError, JobFailure, ShardError};
use crate::journal::JOB_DIR;
use crate::layout::TarId;
use crate::record::{BinWritten, PlanSummary, TarDone};
use crate::report::{
    bin_reports, build_counts, write_report, JobReport, MilestoneSeconds, Progress,
};
use crate::storage::{Location, Storage};

/// Where worker 0 gathers what the summaries and the report are made of.
#[derive(Default)]
pub struct Gathered {
    /// The plan's summary (`assign_tars`, on worker 0 of process 0).
    pub plan: Rc<RefCell<Option<PlanSummary>>>,
    /// The completed triples (`collect_done`, and the plan gate's on `--resume`).
    pub done: Rc<RefCell<Vec<TarDone>>>,
}

/// What worker 0 brings back.
struct LeaderResult {
    plan: PlanSummary,
    bins: Result<Vec<BinWritten>, ShardError>,
    done: Vec<TarDone>,
}

/// Runs a shard job's dataflow on this process's workers. Process 0 then writes the
/// summaries, `report.json` and `rejects.jsonl`.
pub struct Runner {
    name: &'static str,
    cfg: ShardConfig,
    output: Storage,
    job_dir: Location,
    progress: Arc<Progress>,
    interrupted: Arc<AtomicBool>,
    started: Instant,
}

impl Runner {
    /// A job named `name` in its report, writing through `output`; a signal sets
    /// `interrupted`; `started` is when the command started. Process 0 creates the job
    /// directory now, so that an output that cannot be written fails early.
    pub fn new(
        name: &'static str,
        cfg: &ShardConfig,
        output: Storage,
        progress: Arc<Progress>,
        interrupted: Arc<AtomicBool>,
        started: Instant,
    ) -> Result<Self, ShardError> {
        let job_dir = cfg.version_dir().join(JOB_DIR);
        if let (0, Some(p)) = (cfg.cluster.process, job_dir.as_local()) {
            std::fs::create_dir_all(p).map_err(|e| ShardError::io(p, e))?;
        }
        Ok(Runner {
            name,
            cfg: cfg.clone(),
            output,
            job_dir,
            progress,
            interrupted,
            started,
        })
    }

    /// Runs the dataflow `build` wires on every worker (given the worker's context and where
    /// worker 0 gathers the plan and the completed triples), then, on process 0, writes the
    /// summaries with `finish` (given the planned tars per bin and the completed triples;
    /// skipped when the job failed) and the report, and returns it (also when a failure
    /// stopped the job: then `ok` is false). Other processes return `None` when the dataflow
    /// is complete. A refusal writes nothing and is an error.
    pub fn run<F, S>(self, finish: S, build: F) -> Result<Option<JobReport>, ShardError>
    where
        F: for<'s> Fn(Scope<'s, u64>, &JobContext, &Gathered) + Send + Sync + 'static,
        S: Fn(&[(String, Vec<TarId>)], &[TarDone]) -> Result<Vec<BinWritten>, ShardError>
            + Send
            + Sync
            + 'static,
    {
        let cfg = &self.cfg;
        let failure = FailureSignal::default();
        let watcher = SignalWatcher::start(self.interrupted.clone(), failure.clone());
        let (progress, worker_failure) = (self.progress.clone(), failure.clone());
        let links = (cfg.cluster.processes > 1).then(|| super::Links {
            connect_timeout: Duration::from_secs(cfg.cluster.connect_timeout_s),
            peer_timeout: Duration::from_secs(cfg.cluster.peer_timeout_s),
        });
        let milestones = Arc::new(Milestones::new(self.started));
        let worker_milestones = milestones.clone();
        let results = super::execute(
            cfg.cluster.timely_config(cfg.workers),
            links,
            move |worker| {
                let ctx = JobContext::new(progress.clone(), worker_failure.clone())
                    .with_milestones(worker_milestones.clone());
                let gathered = Gathered::default();
                worker.dataflow::<u64, _, _>(|scope| build(scope, &ctx, &gathered));
                while worker.step_or_park(None) {}
                let leader = gathered.plan.take().map(|plan| {
                    let done = gathered.done.take();
                    // a failure anywhere: no summary may claim the dataset is complete
                    let bins = match ctx.failure.get() {
                        Some(f) => Err(ShardError::NotFinalized(f)),
                        None => {
                            let _t = ctx.clock.time("finalize");
                            finish(&plan.bins, &done)
                        }
                    };
                    LeaderResult { plan, bins, done }
                });
                (leader, ctx.clock.seconds())
            },
        )?;
        drop(watcher);

        let mut stage_seconds = BTreeMap::new();
        let mut leader = None;
        for (l, secs) in results {
            for (k, v) in secs {
                *stage_seconds.entry(k).or_insert(0.0) += v;
            }
            leader = leader.or(l);
        }
        let Some(leader) = leader else {
            if cfg.cluster.process == 0 {
                return Err(JobError::NoPlan.into());
            }
            return Ok(None);
        };
        if let Some(refused) = failure.take_refusal() {
            // a refusal leaves the output as it was: no report, no rejects
            return Err(ShardError::Refused(refused));
        }
        let (counts, rejects) = build_counts(&leader.plan, &leader.done);
        let mut error = failure.take().map(|f| f.to_string());
        let bins = match leader.bins {
            Ok(b) => b,
            Err(e) => {
                error.get_or_insert(e.to_string());
                vec![]
            }
        };
        let mut report = JobReport {
            job: self.name.into(),
            ok: error.is_none(),
            error,
            counts,
            stage_seconds,
            wall_seconds: self.started.elapsed().as_secs_f64(),
            milestone_seconds: MilestoneSeconds {
                planned: milestones.seconds(Milestone::Planned),
                first_caption_encoded: milestones.seconds(Milestone::FirstCaptionEncoded),
                first_tar_completed: milestones.seconds(Milestone::FirstTarCompleted),
            },
            workers: cfg.workers,
            processes: cfg.cluster.processes,
            bins: bin_reports(&bins),
        };
        if let Err(e) = write_report(&self.output, &self.job_dir, &report, &rejects) {
            // a job that already failed keeps its own error first
            let Some(first) = report.error.take() else {
                return Err(e);
            };
            report.error = Some(format!(
                "{first}; the report could not be written either: {e}"
            ));
        }
        Ok(Some(report))
    }
}

/// Turns a signal into the job's failure while the job runs: the encoder and writers stop,
/// open tars are abandoned, no summary is written; completed tars stay recorded for
/// `--resume`. Stops watching when dropped.
struct SignalWatcher {
    finished: Arc<AtomicBool>,
}

impl SignalWatcher {
    fn start(interrupted: Arc<AtomicBool>, failure: FailureSignal) -> Self {
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        std::thread::spawn(move || {
            while !done.load(SeqCst) {
                if interrupted.load(SeqCst) {
                    tracing::warn!("interrupted: stopping; completed tars are kept");
                    failure.fail(JobFailure::Interrupted);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        SignalWatcher { finished }
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.finished.store(true, SeqCst);
    }
}
