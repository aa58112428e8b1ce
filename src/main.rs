//! The `shardflow` command: parse options, load the model, run a dataflow, report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use shardflow::config::{ShardArgs, ShardConfig};
use shardflow::dataflows::shard;
use shardflow::error::{JobError, ShardError};
use shardflow::journal::JOB_DIR;
use shardflow::model::{t5, DeviceSpec, ModelError, Precision, TextEncoder};
use shardflow::prepare;
use shardflow::report::Progress;
use shardflow::storage::{OutputLock, Storage};

mod commands;

/// mimalloc keeps freed pages for reuse: the encoder allocates and frees tensors of several
/// MiB per layer, which glibc's allocator returns to the kernel (mmap/munmap) and faults in
/// again each time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "shardflow",
    version,
    about = "Shard video clips and T5 caption embeddings into webdataset tars"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn a splitting-pipeline output into a sharded webdataset.
    Shard(Box<ShardArgs>),
    /// Shard a new annotation version from an earlier one, embedding only new or changed
    /// captions and copying the tars whose contents did not change.
    Reshard(Box<ReshardArgs>),
    /// Embed a JSON list of captions, timed (for benchmarks and device checks).
    Encode(EncodeArgs),
    /// Run `shard` as N local processes talking over loopback (timely cluster mode).
    Launch(LaunchArgs),
    /// Check a written dataset end to end; exit 0 only when every check holds.
    Verify(commands::VerifyArgs),
    /// Per-bin statistics of a written dataset.
    Inspect(commands::InspectArgs),
    /// Write DALI and/or wids indexes for an existing dataset (reading each tar once).
    Index(commands::IndexArgs),
}

#[derive(clap::Args)]
struct ReshardArgs {
    /// The earlier annotation version, already sharded into the same
    /// --output-dataset-path by shardflow with the same model and options.
    #[arg(long)]
    from_version: String,
    /// If the earlier version cannot be used (missing, incomplete, made with another model or
    /// options), shard the new version from scratch instead of stopping with an error.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    shard: ShardArgs,
}

#[derive(clap::Args)]
struct LaunchArgs {
    /// Number of local processes.
    #[arg(long)]
    processes: usize,
    /// Arguments of `shardflow shard` (after `--`), or `reshard` followed by its arguments;
    /// `--processes`, `--process` and `--hostfile` are added for each process.
    #[arg(last = true, required = true)]
    shard_args: Vec<String>,
}

#[derive(clap::Args)]
struct EncodeArgs {
    /// Hugging Face T5 model directory.
    #[arg(long)]
    t5_model: PathBuf,
    /// A JSON file holding a list of caption strings.
    #[arg(long)]
    captions: PathBuf,
    /// Write the fp32 embeddings here as safetensors (`caption_00000`, ...).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Captions per encoder batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Tokens per encoder batch.
    #[arg(long, default_value_t = 4096)]
    max_batch_tokens: usize,
    /// Encoder threads (default: available cores on cpu, 1 on cuda).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the encoder runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Encoder precision: fp32, bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    t5_dtype: Precision,
    /// Encode this many times and report the fastest (the first run warms up).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHARDFLOW_LOG")
                // object_store logs every retried request at info: keep a run's log readable
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,object_store=warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    install_peer_failure_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Shard(args) => {
            let request = if args.append {
                prepare::IncrementalRequest::Append
            } else {
                prepare::IncrementalRequest::None
            };
            run_shard(*args, request)
        }
        Command::Reshard(args) => {
            let request = prepare::IncrementalRequest::Reshard {
                from_version: args.from_version,
                full: args.full,
            };
            if args.shard.append {
                eprintln!("error: --append is an option of `shard`, not `reshard`");
                return ExitCode::from(2);
            }
            run_shard(args.shard, request)
        }
        Command::Encode(args) => run_encode(args),
        Command::Launch(args) => run_launch(args),
        Command::Verify(args) => commands::run_verify(args),
        Command::Inspect(args) => commands::run_inspect(args),
        Command::Index(args) => commands::run_index(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain_message(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause the message already shows
/// (library errors such as `ShardError::Io` name their cause in their own message).
fn chain_message(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

fn run_shard(args: ShardArgs, request: prepare::IncrementalRequest) -> anyhow::Result<ExitCode> {
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
    let resume = prepare::preflight(
        cfg,
        storage,
        args.resume,
        request == prepare::IncrementalRequest::Append,
    )?;
    if locked && (args.resume || request == prepare::IncrementalRequest::Append) {
        prepare::clear_leftovers(cfg, storage)?;
    }
    let incremental = prepare::prepare_incremental(cfg, storage, &request)?;
    let dedup = prepare::load_dedup(cfg, storage)?;
    let encoder = load_model(&cfg.model_dir, cfg.device, cfg.precision)?;
    tracing::info!(
        "loaded T5 model from {} (d_model {}) on {} in {:?}",
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
struct ShardJob<'a> {
    cfg: &'a ShardConfig,
    storage: &'a Storage,
    resume: Option<shardflow::journal::JobFingerprint>,
    incremental: Option<shardflow::incremental::plan::Mode>,
    dedup: Option<Arc<std::collections::HashSet<String>>>,
    started: Instant,
}

impl ShardJob<'_> {
    /// Runs the shard dataflow with `encoder`, showing progress; SIGTERM / SIGINT raise the
    /// flag that the job's runner turns into its failure.
    fn run(
        self,
        encoder: Arc<dyn TextEncoder>,
    ) -> anyhow::Result<Option<shardflow::report::JobReport>> {
        let cfg = self.cfg;
        let progress = Arc::new(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        // SIGTERM / SIGINT stop the job gracefully (a second one ends the process at once)
        let interrupted = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone())
                .context("installing signal handlers")?;
            signal_hook::flag::register(sig, interrupted.clone())
                .context("installing signal handlers")?;
        }
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
            // the output as a killed run leaves it
            eprintln!("error: {e}");
            std::process::exit(3);
        }
        stop.store(true, Ordering::Relaxed);
        let _ = display.join();
        Ok(report?)
    }
}

fn run_encode(args: EncodeArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.captions)
        .with_context(|| format!("reading {}", args.captions.display()))?;
    let captions: Vec<String> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON list of strings",
            args.captions.display()
        )
    })?;
    let stats = encode(&args, &captions)?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(ExitCode::SUCCESS)
}

/// Embeds `captions` `--repeat` times (writing the fastest run's rows to `--output`) and
/// returns the fastest run's timings.
fn encode(a: &EncodeArgs, captions: &[String]) -> anyhow::Result<shardflow::embed::EncodeStats> {
    let encoder = load_model(&a.t5_model, a.device, a.t5_dtype)?;
    let threads = a.threads.unwrap_or(match a.device {
        DeviceSpec::Cpu => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        DeviceSpec::Cuda(_) => 1,
    });
    let mut best: Option<(Vec<Vec<f32>>, shardflow::embed::EncodeStats)> = None;
    for _ in 0..a.repeat.max(1) {
        let run = shardflow::embed::embed_captions(
            encoder.as_ref(),
            captions,
            a.batch_size,
            a.max_batch_tokens,
            threads,
        );
        if best
            .as_ref()
            .is_none_or(|b| run.1.encode_seconds < b.1.encode_seconds)
        {
            best = Some(run);
        }
    }
    let (rows, stats) = best.expect("at least one run");
    if let Some(out) = &a.output {
        let d = encoder.d_model();
        let bytes: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| r.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    vec![b.len() / 4 / d, d],
                    b,
                )?;
                Ok((format!("caption_{i:05}"), view))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        safetensors::serialize_to_file(views, None, out)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(stats)
}

/// Loads the T5 model of `dir` on the backend that `device` and `precision` select: the one
/// place the binary loads a model (`shard`, `reshard`, `encode` and `verify`). A device or
/// precision that cannot be used is said as it is; any other error names the directory.
pub(crate) fn load_model(
    dir: &Path,
    device: DeviceSpec,
    precision: Precision,
) -> anyhow::Result<Arc<dyn TextEncoder>> {
    t5::load(dir, device, precision).map_err(|e| match e {
        ModelError::Unsupported(_) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("loading the T5 model from {}", dir.display())),
    })
}

/// Starts `processes` local `shard` processes on free loopback ports and waits for them; if
/// one fails, the others are stopped and the first failure's exit code is returned.
fn run_launch(args: LaunchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.processes >= 1, "--processes must be at least 1");
    // reserve ports by binding, then release them for the processes to take
    let listeners: Vec<std::net::TcpListener> = (0..args.processes)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("finding free loopback ports")?;
    let hosts: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<_, _>>()?;
    drop(listeners);
    let hostfile = std::env::temp_dir().join(format!("shardflow-hosts-{}.txt", std::process::id()));
    std::fs::write(&hostfile, hosts.join("\n") + "\n")
        .with_context(|| format!("writing {}", hostfile.display()))?;
    let exe = std::env::current_exe().context("locating the shardflow executable")?;
    let mut children = Vec::new();
    for i in 0..args.processes {
        // `launch -- reshard ...` runs `reshard`; anything else is `shard`'s arguments
        let (sub, rest) = match args.shard_args.first().map(String::as_str) {
            Some(s @ ("shard" | "reshard")) => (s, &args.shard_args[1..]),
            _ => ("shard", &args.shard_args[..]),
        };
        let child = std::process::Command::new(&exe)
            .arg(sub)
            .args(rest)
            .args([
                "--processes",
                &args.processes.to_string(),
                "--process",
                &i.to_string(),
            ])
            .arg("--hostfile")
            .arg(&hostfile)
            .spawn()
            .with_context(|| format!("starting process {i}"))?;
        children.push(Some(child));
    }
    let mut failure: Option<(usize, i32)> = None;
    while children.iter().any(Option::is_some) {
        for (i, slot) in children.iter_mut().enumerate() {
            if let Some(child) = slot {
                if let Some(status) = child.try_wait()? {
                    *slot = None;
                    if !status.success() && failure.is_none() {
                        failure = Some((i, status.code().unwrap_or(1)));
                    }
                }
            }
        }
        if let Some((i, _)) = failure {
            for child in children.iter_mut().flatten() {
                let _ = child.kill();
            }
            for mut child in children.iter_mut().filter_map(Option::take) {
                let _ = child.wait();
            }
            tracing::error!("process {i} failed; stopped the others");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&hostfile);
    Ok(match failure {
        Some((_, code)) => ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)),
        None => ExitCode::SUCCESS,
    })
}

/// The output lock process 0 holds while its job runs.
fn held_lock() -> std::sync::MutexGuard<'static, Option<OutputLock>> {
    static HELD: Mutex<Option<OutputLock>> = Mutex::new(None);
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Releases the held output lock when a panic unwinds past it, as it would if it were a local.
struct ReleaseOnUnwind;

impl Drop for ReleaseOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(held_lock().take());
        }
    }
}

/// Releases the output lock (if this process holds one) before a lost-peer exit, so that
/// `--resume` can start at once instead of waiting out an object-store lock's lease; given
/// up after `within` (a store out of reach), as the exit must stay prompt.
fn release_held_lock(within: Duration) {
    let Some(lock) = held_lock().take() else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(lock);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(within);
}

/// When another process of a cluster job dies or stops answering, timely's network threads
/// panic. Turn that into one clear message and a prompt exit (code 3) instead of a cascade of
/// panics; no report is written, so nothing claims to be complete.
fn install_peer_failure_hook() {
    // the first failing thread speaks and exits; the others wait here for the exit
    static EXITING: Mutex<()> = Mutex::new(());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if thread.starts_with("timely:") || msg.contains("timely communication error") {
            let _exiting = EXITING.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!(
                "error: lost contact with another process of the job ({msg}); stopping. The output is incomplete: no report was written"
            );
            release_held_lock(Duration::from_secs(5));
            std::process::exit(3);
        }
        default(info);
    }));
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
