//! The `shardflow` command: parse options, load the model, run a dataflow, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use shardflow::config::{parse_remap, ShardConfig};
use shardflow::dataflows::shard;
use shardflow::model::{CpuBackend, TextEncoder};
use shardflow::report::Progress;

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
    Shard(ShardArgs),
}

#[derive(clap::Args)]
struct ShardArgs {
    /// Input: the directory holding `clips/` and `metas/<version>/`.
    #[arg(long)]
    input_clip_path: PathBuf,
    /// Output dataset directory; the dataset goes to `<output>/<version>/`.
    #[arg(long)]
    output_dataset_path: String,
    /// Annotation version: reads `metas/<version>/`, writes `<output>/<version>/`.
    #[arg(long, default_value = "v0")]
    annotation_version: String,
    /// Hugging Face T5 model directory (config.json, weights, tokenizer.json).
    #[arg(long)]
    t5_model: PathBuf,
    /// Worker threads (default: available cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Caption windows per encoder batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Target tar size in MiB (metadata `num_bytes` summed).
    #[arg(long, default_value_t = 500.0)]
    target_tar_size_mb: f64,
    /// Tars per part folder.
    #[arg(long, default_value_t = 100)]
    max_tars_per_part: u32,
    /// Caption field prefix: windows hold `<algorithm>_caption`.
    #[arg(long, default_value = "qwen")]
    captioning_algorithm: String,
    /// Rewrite a `clip_location` prefix, FROM=TO (repeatable; first match wins).
    #[arg(long = "remap-clip-location", value_parser = parse_remap)]
    remaps: Vec<(String, String)>,
    /// Validate the options and the model, then exit without running.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHARDFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Shard(args) => run_shard(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_shard(args: ShardArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let cfg = ShardConfig {
        input: args.input_clip_path,
        output: args.output_dataset_path,
        version: args.annotation_version,
        model_dir: args.t5_model,
        workers,
        batch_size: args.batch_size,
        target_tar_size_mb: args.target_tar_size_mb,
        max_tars_per_part: args.max_tars_per_part,
        captioning_algorithm: args.captioning_algorithm,
        // a relative remap target means the user's working directory, not the input root
        remaps: args
            .remaps
            .into_iter()
            .map(|(from, to)| {
                if to.contains("://") || std::path::Path::new(&to).is_absolute() || to.is_empty() {
                    Ok((from, to))
                } else {
                    std::path::absolute(&to).map(|abs| (from, abs.to_string_lossy().into_owned()))
                }
            })
            .collect::<Result<_, _>>()
            .context("resolving --remap-clip-location")?,
    };
    if let Err(errors) = cfg.validate() {
        anyhow::bail!("invalid options:\n  {}", errors.join("\n  "));
    }
    shard::preflight(&cfg)?;
    let device = Default::default();
    let encoder = TextEncoder::<CpuBackend>::load(&cfg.model_dir, &device)
        .with_context(|| format!("loading the T5 model from {}", cfg.model_dir.display()))?;
    tracing::info!(
        "loaded T5 model from {} (d_model {})",
        cfg.model_dir.display(),
        encoder.d_model()
    );
    if args.check {
        println!("ok: options, input and model are valid");
        return Ok(ExitCode::SUCCESS);
    }

    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let display = spawn_progress(progress.clone(), stop.clone());
    let report = shard::run(&cfg, encoder, progress, started);
    stop.store(true, Ordering::Relaxed);
    let _ = display.join();
    let report = report?;

    let c = &report.counts;
    let job_dir = cfg.version_dir().join(shard::JOB_DIR);
    println!(
        "{}: {} clips written in {} tars ({} bins), {} invalid, {} dropped (no bin), {} rejected, in {:.1}s",
        cfg.version_dir().display(),
        c.written,
        c.tars,
        report.bins.len(),
        c.invalid,
        c.dropped_no_bin,
        c.rejected.values().sum::<u64>(),
        report.wall_seconds
    );
    println!("report: {}", job_dir.join("report.json").display());
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
