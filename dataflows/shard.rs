//! The `shard` job: `list → read_meta → assign_tars → batch → encode → exchange_by_bin →
//! write_tar → finalize`, on `workers` threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::ShardConfig;
use crate::error::ShardError;
use crate::incremental::plan::Mode;
use crate::incremental::reuse::EmbeddingSource;
use crate::incremental::Grouping;
use crate::journal::{JobFingerprint, Journal};
use crate::model::TextEncoder;
use crate::ops::assign_tars::PlanGate;
use crate::ops::assign_tars::{AssignTars, PlanSummary, Planner};
use crate::ops::batch::Batch;
use crate::ops::encode::{Encode, SampleEncoder};
use crate::ops::exchange_by_bin::ExchangeByBin;
use crate::ops::finalize::{BinWritten, CollectDone, Finalizer};
use crate::ops::list::{list_metas, Lister};
use crate::ops::read_meta::{MetaReader, ReadMeta};
use crate::ops::reload::Reloader;
use crate::ops::write_tar::{TarWriters, WriteTar};
use crate::ops::StageClock;
use crate::report::{bin_reports, build_counts, write_report, JobReport, Progress};
use crate::storage::{Role, Storage};

pub use crate::journal::JOB_DIR;
pub use crate::prepare::{
    clear_leftovers, load_dedup, lock_output, preflight, prepare_incremental, IncrementalRequest,
};
use crate::prepare::{drop_below, fingerprint};

/// What worker 0 brings back.
struct LeaderResult {
    plan: PlanSummary,
    bins: Result<Vec<BinWritten>, ShardError>,
    done: Vec<crate::record::TarDone>,
}

/// Runs this process's share of the job with a loaded encoder; call [`preflight`] first
/// (before loading the model, so that its errors come first). Process 0 plans, writes the
/// summaries, `report.json` and `rejects.jsonl` once every tar is complete, and returns the
/// report (also when a fatal error stopped the job: then `ok` is false); other processes
/// return `None` when the dataflow is complete.
#[allow(clippy::too_many_arguments)]
pub fn run<E: TextEncoder + Clone + 'static>(
    cfg: &ShardConfig,
    storage: &Storage,
    resume: Option<JobFingerprint>,
    incremental: Option<Mode>,
    dedup: Option<Arc<std::collections::HashSet<String>>>,
    encoder: E,
    progress: Arc<Progress>,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
) -> Result<Option<JobReport>, ShardError> {
    let input = storage.with_role(Role::Input);
    let output = storage.with_role(Role::Output);
    let version_dir = cfg.version_dir();
    let job_dir = version_dir.join(JOB_DIR);
    if let (0, Some(p)) = (cfg.cluster.process, job_dir.as_local()) {
        // fail early on an output that cannot be written
        std::fs::create_dir_all(p).map_err(|e| ShardError::io(p, e))?;
    }

    let mut lister = Lister::new(input.clone(), cfg.meta_dir());
    if cfg.listing == crate::config::Listing::Summary {
        lister = lister.with_summary(cfg.input_location().join("summary.json"));
    }
    let reader = MetaReader {
        storage: input.clone(),
        meta_dir: cfg.meta_dir(),
        input_root: cfg.input_location(),
        remaps: cfg.remaps.clone(),
        caption_field: format!("{}_caption", cfg.captioning_algorithm),
        bins: cfg.bins.clone(),
        allowed_roots: cfg.allowed_clip_roots.clone(),
        slim: true,
        check_clips: true,
    };
    // after planning, each planned clip's metadata is read again in full
    let full_reader = MetaReader {
        slim: false,
        check_clips: false,
        ..reader.clone()
    };
    // SOURCE_DATE_EPOCH, the reproducible-builds convention, pins the tar member mtime
    let epoch: Option<u64> = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let mtime = match (&incremental, epoch) {
        // an incremental run's tars carry the earlier output's mtime, so that the tars it
        // copies and the ones it writes agree
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
    };
    let job_name = match &incremental {
        Some(Mode::Reshard { .. }) => "reshard",
        Some(Mode::Append { .. }) => crate::incremental::base::APPEND_JOB,
        None => "shard",
    };
    let incremental = incremental.map(|m| {
        (
            m,
            Grouping {
                target_tar_bytes: cfg.target_tar_bytes(),
                max_tars_per_part: cfg.max_tars_per_part,
                drop_below: drop_below(cfg),
            },
        )
    });
    let planner = Planner {
        target_tar_bytes: cfg.target_tar_bytes(),
        max_tars_per_part: cfg.max_tars_per_part,
        mtime,
        drop_below: drop_below(cfg),
        dedup,
    };
    let journal = Journal::new(output.clone(), version_dir.clone());
    let job = fingerprint(cfg, mtime)?;
    let finalizer = Finalizer {
        storage: output.clone(),
        version_dir: version_dir.clone(),
        root_version_dir: cfg.root_version_dir(),
        display_version_dir: cfg.display_version_dir(),
        max_tars_per_part: cfg.max_tars_per_part,
        wids_index: cfg.index.wids,
    };
    let dali_index = cfg.index.dali;
    let batch_size = cfg.batch_size;
    let max_batch_tokens = cfg.max_batch_tokens;
    let require_captions =
        (!cfg.allow_no_captions).then(|| format!("{}_caption", cfg.captioning_algorithm));
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let worker_refusal = refusal.clone();
    let encoder = Mutex::new(encoder);
    // a signal stops the job like a fatal error: the encoder and writers stop, open tars are
    // abandoned, no summary is written; completed tars stay recorded for --resume
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (failure, finished) = (failure.clone(), finished.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while !finished.load(SeqCst) {
                if interrupted.load(SeqCst) {
                    tracing::warn!("interrupted: stopping; completed tars are kept");
                    failure.lock().expect("not poisoned").get_or_insert(
                        "interrupted by a signal; the completed tars are kept: continue with --resume"
                            .into(),
                    );
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
    }
    let worker_stop = failure.clone();
    let worker_failure = failure.clone();
    let worker_progress = progress.clone();

    // timely retries connections forever: bound the wait
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if cfg.cluster.processes > 1 {
        let (connected, timeout) = (connected.clone(), cfg.cluster.connect_timeout_s);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(timeout));
            if !connected.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("error: the processes of the job did not all connect within {timeout} s; check the hostfile and that every process was started");
                std::process::exit(3);
            }
        });
    }
    let report_output = output.clone();
    let guards = timely::execute(cfg.cluster.timely_config(cfg.workers), move |worker| {
        let clock = StageClock::default();
        let summary: Rc<RefCell<Option<PlanSummary>>> = Rc::default();
        let done: Rc<RefCell<Vec<crate::record::TarDone>>> = Rc::default();
        let gate = PlanGate {
            journal: journal.clone(),
            job: job.clone(),
            resume: resume.clone(),
            done: done.clone(),
            failure: worker_failure.clone(),
            refusal: worker_refusal.clone(),
            require_captions: require_captions.clone(),
            incremental: incremental.clone(),
            dali_index,
        };
        let encoder = encoder.lock().expect("not poisoned").clone();
        let tokenizer = encoder.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            list_metas(scope, lister.clone(), clock.clone())
                .read_meta(reader.clone(), clock.clone())
                .assign_tars(
                    planner.clone(),
                    Some(gate),
                    summary.clone(),
                    worker_progress.clone(),
                    clock.clone(),
                )
                .batch(
                    batch_size,
                    max_batch_tokens,
                    move |c| tokenizer.tokenize(c),
                    Some(Reloader {
                        reader: full_reader.clone(),
                    }),
                    clock.clone(),
                )
                .encode(
                    SampleEncoder::new(encoder).with_stop(worker_failure.clone()),
                    clock.clone(),
                )
                .exchange_by_bin()
                .write_tar(
                    TarWriters::new(output.clone(), input.clone(), finalizer.version_dir.clone())
                        .with_journal(journal.clone())
                        .with_dali_index(dali_index)
                        .with_reuse(EmbeddingSource::new(output.clone())),
                    worker_failure.clone(),
                    worker_progress.clone(),
                    clock.clone(),
                )
                .collect_done(Rc::clone(&done));
        });
        while worker.step_or_park(None) {}
        let leader = summary.take().map(|plan| {
            let done: Vec<crate::record::TarDone> = done.take();
            // a write failure anywhere: no summary may claim the dataset is complete
            let failed = worker_stop.lock().expect("not poisoned").clone();
            let bins = match failed {
                Some(e) => Err(ShardError::Dataflow(format!(
                    "not writing wdinfo files: a tar could not be written ({e})"
                ))),
                None => {
                    let _t = clock.time("finalize");
                    finalizer.finish(&plan.bins, &done)
                }
            };
            LeaderResult { plan, bins, done }
        });
        (leader, clock.seconds())
    })
    .map_err(ShardError::Dataflow)?;
    connected.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut stage_seconds = std::collections::BTreeMap::new();
    let mut leader = None;
    for result in guards.join() {
        let (l, secs) = result.map_err(ShardError::Dataflow)?;
        for (k, v) in secs {
            *stage_seconds.entry(k).or_insert(0.0) += v;
        }
        leader = leader.or(l);
    }
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let Some(leader) = leader else {
        if cfg.cluster.process == 0 {
            return Err(ShardError::Dataflow("worker 0 returned no plan".into()));
        }
        return Ok(None);
    };
    if let Some(refused) = refusal.lock().expect("not poisoned").take() {
        // a refusal leaves the output as it was: no report, no rejects
        return Err(ShardError::Journal(refused));
    }
    let (counts, rejects) = build_counts(&leader.plan, &leader.done);
    let mut error = failure.lock().expect("not poisoned").take();
    let bins = match leader.bins {
        Ok(b) => b,
        Err(e) => {
            error.get_or_insert(e.to_string());
            vec![]
        }
    };
    let mut report = JobReport {
        job: job_name.into(),
        ok: error.is_none(),
        error,
        counts,
        stage_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        workers: cfg.workers,
        processes: cfg.cluster.processes,
        bins: bin_reports(&bins),
    };
    if let Err(e) = write_report(&report_output, &job_dir, &report, &rejects) {
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
