//! `shardflow shard` and `reshard`: the output lock, preflight, the model, the dataflow, the
//! summary line and exit code, and the progress display.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use shardflow::config::{ShardArgs, ShardConfig};
use shardflow::dataflows::shard;
use shardflow::error::{JobError, ShardError};
use shardflow::journal::JOB_DIR;
use shardflow::metrics::render;
use shardflow::metrics::serve::MetricsServer;
use shardflow::model::TextEncoder;
use shardflow::prepare;
use shardflow::report::Progress;
use shardflow::storage::Storage;

use crate::cmd::peer::{held_lock, release_held_lock, ReleaseOnUnwind};
use crate::load_model;

pub(crate) fn run_shard(
    args: ShardArgs,
    request: prepare::IncrementalRequest,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = args
        .merged_options()
        .map_err(|e| anyhow::anyhow!("invalid config: {e}"))?;
    let env = |k: &str| std::env::var(k).ok();
    let mut cfg = match ShardConfig::resolve(options, &env) {
        Ok(cfg) => cfg,
        Err(errors) => anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  ")),
    };
    cfg.absolutize_paths().map_err(anyhow::Error::msg)?;
    let storage = Storage::new(cfg.storage.clone());
    // one job at a time per output version: taken before the output is looked at, held until
    // this process ends (process 0 speaks for the job; `--check` writes nothing)
    let lock = (!args.check && cfg.cluster.process == 0)
        .then(|| prepare::lock_output(&cfg, &storage))
        .transpose()?;
    let locked = lock.is_some();
    // held where the lost-peer exit can release it
    *held_lock() = lock;
    let result = {
        let _unwinding = ReleaseOnUnwind;
        run_shard_locked(args, request, &cfg, &storage, locked, started)
    };
    let lock = held_lock().take();
    match (result, lock) {
        // a job that could not start leaves no trace, not even its lock file
        (Err(e), Some(lock)) => {
            lock.discard();
            Err(e)
        }
        (Ok(_), Some(lock)) if lock.lost() => {
            eprintln!("error: the output lock was lost during the job (its renewals failed for minutes): another job may have written to the same output; check it with `shardflow verify`");
            Ok(ExitCode::from(1))
        }
        (result, _) => result,
    }
}

/// [`run_shard`] once process 0 holds the output lock (`locked`).
fn run_shard_locked(
    args: ShardArgs,
    request: prepare::IncrementalRequest,
    cfg: &ShardConfig,
    storage: &Storage,
    locked: bool,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    // a re-shard or an append plans in one step, on every process
    let mut cfg = cfg.clone();
    cfg.gathered_plan |= request != prepare::IncrementalRequest::None;
    let cfg = &cfg;
    let progress = Arc::new(Progress::default());
    // bound before anything else, so that a port in use fails the command before the job
    // starts; served until the job ends (the server is dropped on return)
    let _metrics = match cfg.metrics_listen.filter(|_| !args.check) {
        Some(addr) => {
            let p = progress.clone();
            let server = MetricsServer::start(addr, move || render(&p.snapshot()))?;
            tracing::info!("serving metrics at http://{}/metrics", server.addr());
            Some(server)
        }
        None => None,
    };
    let resume = prepare::preflight(
        cfg,
        storage,
        args.resume,
        request == prepare::IncrementalRequest::Append,
    )?;
    // a killed run's temporary files go, also before a fresh job into an output that held
    // nothing else (it was killed while writing its journal)
    if locked {
        prepare::clear_leftovers(cfg, storage)?;
    }
    let incremental = prepare::prepare_incremental(cfg, storage, &request)?;
    let dedup = prepare::load_dedup(cfg, storage)?;
    let encoder = load_model(&cfg.model_dir, cfg.device, cfg.precision)?;
    tracing::info!(
        "loaded the text encoder from {} (d_model {}) on {} in {:?}",
        cfg.model_dir.display(),
        encoder.d_model(),
        cfg.device,
        cfg.precision
    );
    if args.check {
        println!("ok: options, input and model are valid");
        return Ok(ExitCode::SUCCESS);
    }
    let job = ShardJob {
        cfg,
        storage,
        resume,
        incremental,
        dedup,
        started,
        progress,
    };
    let Some(report) = job.run(encoder)? else {
        println!(
            "process {}/{}: done",
            cfg.cluster.process, cfg.cluster.processes
        );
        return Ok(ExitCode::SUCCESS);
    };

    let c = &report.counts;
    let job_dir = cfg.version_dir().join(JOB_DIR);
    let incremental = match (c.tars_copied, c.tars_kept) {
        (0, 0) => String::new(),
        (copied, 0) => format!(
            " + {copied} copied; {} caption windows embedded, {} reused",
            c.windows_embedded, c.windows_reused
        ),
        (_, kept) => format!(" + {kept} kept"),
    };
    println!(
        "{}: {} clips written in {} tars{incremental} ({} bins), {} invalid, {} dropped (no bin), {} rejected, in {:.1}s",
        cfg.version_dir(),
        c.written,
        c.tars,
        report.bins.len(),
        c.invalid,
        c.dropped_no_bin,
        c.rejected.values().sum::<u64>(),
        report.wall_seconds
    );
    println!("report: {}", job_dir.join("report.json"));
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(1));
    }
    let rejected: u64 = c.rejected.values().sum();
    if rejected as f64 > cfg.max_rejected_fraction * c.listed as f64 {
        eprintln!(
            "error: {rejected} of {} listed inputs were rejected ({:.2} %), more than --max-rejected-fraction {} allows; the dataset is complete without them, see {}",
            c.listed,
            100.0 * rejected as f64 / c.listed.max(1) as f64,
            cfg.max_rejected_fraction,
            job_dir.join("rejects.jsonl")
        );
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the shard dataflow needs besides the model, once the output is prepared.
pub(crate) struct ShardJob<'a> {
    pub(crate) cfg: &'a ShardConfig,
    pub(crate) storage: &'a Storage,
    pub(crate) resume: Option<shardflow::journal::JobFingerprint>,
    pub(crate) incremental: Option<shardflow::incremental::plan::Mode>,
    pub(crate) dedup: Option<Arc<std::collections::HashSet<String>>>,
    /// When the job started (its report's `wall_seconds` count from here).
    pub(crate) started: Instant,
    /// The live counters (also those of the metrics endpoint, when served).
    pub(crate) progress: Arc<Progress>,
}

impl ShardJob<'_> {
    /// Runs the shard dataflow with `encoder`, showing progress; SIGTERM / SIGINT raise the
    /// flag that the job's runner turns into its failure.
    pub(crate) fn run(
        self,
        encoder: Arc<dyn TextEncoder>,
    ) -> anyhow::Result<Option<shardflow::report::JobReport>> {
        let cfg = self.cfg;
        let progress = self.progress;
        let stop = Arc::new(AtomicBool::new(false));
        // SIGTERM / SIGINT stop the job gracefully (a second one ends the process at once)
        let interrupted = watch_signals().context("installing signal handlers")?;
        let display = spawn_progress(progress.clone(), stop.clone());
        let report = shard::run(
            cfg,
            self.storage,
            self.resume,
            self.incremental,
            self.dedup,
            encoder,
            progress,
            interrupted,
            self.started,
        );
        if let Err(ShardError::Job(e @ JobError::ConnectTimeout { .. })) = &report {
            // timely's connecting thread never gives up: end the process at once, leaving
            // the output as a killed run leaves it, but released, as on a lost peer: an
            // object-store lock would refuse every job for its lease
            eprintln!("error: {e}");
            release_held_lock(Duration::from_secs(5));
            std::process::exit(3);
        }
        stop.store(true, Ordering::Relaxed);
        let _ = display.join();
        Ok(report?)
    }
}

/// A progress bar on a terminal; a log line every 10 s otherwise.
fn spawn_progress(progress: Arc<Progress>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let tty = std::io::stderr().is_terminal();
        let bar = indicatif::ProgressBar::new(0);
        if tty {
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:40}] {pos}/{len} clips {per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar.set_message("planning");
        } else {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut last_log = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let (written, planned) = progress.get();
            if tty {
                if planned > 0 {
                    bar.set_message("writing");
                    bar.set_length(planned);
                }
                bar.set_position(written);
            } else if last_log.elapsed() >= Duration::from_secs(10) && planned > 0 {
                tracing::info!("progress: {written}/{planned} clips");
                last_log = Instant::now();
            }
        }
        bar.finish_and_clear();
    })
}

/// Within this long of the first SIGTERM / SIGINT, another one is the same request: a
/// scheduler that signals every process of a job (Slurm's `scancel`) reaches a `launch`ed
/// process both directly and through `launch`, and that must not end it without its report.
const SAME_SIGNAL_WINDOW: Duration = Duration::from_secs(2);

/// Installs the SIGTERM / SIGINT handlers: the returned flag is raised by the first signal
/// (the job stops gracefully); a signal more than [`SAME_SIGNAL_WINDOW`] after the first
/// ends the process at once with exit code 130.
fn watch_signals() -> std::io::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, received.clone())?;
    }
    let raised = interrupted.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            loop {
                std::thread::sleep(Duration::from_millis(20));
                if !received.swap(false, Ordering::SeqCst) {
                    continue;
                }
                match first {
                    None => {
                        first = Some(Instant::now());
                        raised.store(true, Ordering::SeqCst);
                    }
                    Some(at) if at.elapsed() > SAME_SIGNAL_WINDOW => {
                        eprintln!(
                            "shardflow: signalled again: exiting now (the output can be resumed)"
                        );
                        signal_hook::low_level::exit(130);
                    }
                    Some(_) => {}
                }
            }
        })?;
    Ok(interrupted)
}
