//! `shardflow bench`: how fast a shard job runs on this machine, and which stage bounds it.
//! Generates a synthetic input (or samples a real one) in a temporary directory, runs the real
//! shard job on it in-process, prints the figures, and removes both directories. With
//! `--keep-input DIR` the generated input is written to DIR and kept, and `--generate-only`
//! stops there: the repository's Python benchmarks make their datasets so.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use shardflow::bench::{self, BenchSetup, SyntheticSpec};
use shardflow::config::{ShardConfig, ShardOptions};
use shardflow::prepare;
use shardflow::report::Progress;
use shardflow::storage::{Location, Storage, StorageOptions};

use crate::cmd::shard::ShardJob;
use crate::load_model;

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Hugging Face T5 or UMT5 model directory (not needed with --generate-only).
    #[arg(long, required_unless_present = "generate_only")]
    t5_model: Option<PathBuf>,
    /// Where the encoder runs: cpu, cuda or cuda:N [default: cpu].
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// Encoder precision: fp32, bf16 or fp16 (cuda only) [default: fp32].
    #[arg(long)]
    t5_dtype: Option<String>,
    /// Worker threads [default: available cores].
    #[arg(long)]
    workers: Option<usize>,
    /// Clips to generate (or, with --input-clip-path, metadata files to take).
    #[arg(long, default_value_t = 200)]
    clips: u64,
    /// Caption windows per generated clip.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    windows_per_clip: u32,
    /// Words per generated caption, MIN..MAX (most are near the middle).
    #[arg(long, default_value = "30..120", value_parser = parse_range)]
    caption_words: (u32, u32),
    /// Mean size of a generated clip in MB (10^6 bytes; each within ±10 %).
    #[arg(long, default_value_t = 2.0)]
    clip_mb: f64,
    /// Seed of the generated dataset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Clips of the whole project, for the "N clips ≈ H hours" estimate.
    #[arg(long, default_value_t = 20_000_000)]
    project_clips: u64,
    /// Benchmark on the first --clips metadata files (in path order) of this dataset instead,
    /// a directory or an object-store URL (s3://, gs://, az://): they are copied to a
    /// temporary input (a local one's other entries, clips/, link to the real ones; an object
    /// store's relative clip locations are made absolute), so the clips are read where they
    /// are; the dataset itself is only read.
    #[arg(long)]
    input_clip_path: Option<String>,
    /// AWS profile for reading an s3:// --input-clip-path and its clips.
    #[arg(long)]
    input_s3_profile_name: Option<String>,
    /// Annotation version of --input-clip-path.
    #[arg(long, default_value = "v0")]
    annotation_version: String,
    /// Write the generated input to this directory (new or empty) and keep it, instead of a
    /// temporary one: the repository's Python benchmarks take their datasets from here.
    #[arg(long, conflicts_with = "input_clip_path")]
    keep_input: Option<PathBuf>,
    /// Write each generated clip_location as ROOT/clips/<uuid>.mp4 instead of relative to the
    /// input (for tools that read it as is, like the reference; e.g. the --keep-input
    /// directory's absolute path).
    #[arg(long, requires = "keep_input")]
    clip_location_root: Option<String>,
    /// Only generate the input (into --keep-input) and stop: no model, no job.
    #[arg(long, requires = "keep_input")]
    generate_only: bool,
    /// Print one JSON object (the keys README "Sizing a run" lists) instead of text.
    #[arg(long)]
    json: bool,
}

/// "MIN..MAX" → (MIN, MAX).
fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected MIN..MAX, got {s:?}"))?;
    let n = |x: &str| x.trim().parse::<u32>().map_err(|e| format!("{x:?}: {e}"));
    let (a, b) = (n(a)?, n(b)?);
    if a == 0 || a > b {
        return Err(format!("expected 1 <= MIN <= MAX, got {s:?}"));
    }
    Ok((a, b))
}

/// A temporary directory removed when dropped (also when the bench fails).
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPU as `lscpu` names it ("Model name"), else `/proc/cpuinfo`'s "model name".
fn cpu_name() -> String {
    let from = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    std::process::Command::new("lscpu")
        .output()
        .ok()
        .and_then(|o| from(&String::from_utf8_lossy(&o.stdout), "Model name"))
        .or_else(|| {
            let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
            from(&text, "model name")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

pub(crate) fn run_bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let work = WorkDir(
        std::env::temp_dir().join(format!("shardflow-bench-{}-{stamp}", std::process::id())),
    );
    let input = match &args.keep_input {
        Some(dir) => {
            let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
            anyhow::ensure!(
                empty,
                "--keep-input {}: not empty (the generated input goes into a new or empty directory)",
                dir.display()
            );
            std::path::absolute(dir)?
        }
        None => work.0.join("input"),
    };
    std::fs::create_dir_all(&input)?;
    let (version, input_name) = match &args.input_clip_path {
        Some(real) => match Location::parse(real).map_err(anyhow::Error::msg)? {
            Location::Local(real) => {
                let real = std::path::absolute(real)?;
                let n =
                    bench::sample_real_input(&real, &args.annotation_version, args.clips, &input)?;
                tracing::info!("benchmarking on {n} metadata files of {}", real.display());
                (args.annotation_version.clone(), real.display().to_string())
            }
            remote => {
                let storage = Storage::new(StorageOptions {
                    input_profile: args.input_s3_profile_name.clone(),
                    ..Default::default()
                });
                let n = bench::sample_remote_input(
                    &storage,
                    &remote,
                    &args.annotation_version,
                    args.clips,
                    &input,
                )?;
                tracing::info!("benchmarking on {n} metadata files of {remote}");
                (args.annotation_version.clone(), remote.to_string())
            }
        },
        None => {
            anyhow::ensure!(
                args.clip_mb > 0.0 && args.clip_mb.is_finite(),
                "--clip-mb must be positive"
            );
            let spec = SyntheticSpec {
                clips: args.clips,
                windows_per_clip: args.windows_per_clip,
                caption_words: args.caption_words,
                clip_bytes: (args.clip_mb * 1e6) as u64,
                seed: args.seed,
                // a relative root would give relative locations, resolved against the input
                clip_root: match &args.clip_location_root {
                    Some(r) if !r.contains("://") => {
                        Some(std::path::absolute(r)?.display().to_string())
                    }
                    other => other.clone(),
                },
            };
            let started = Instant::now();
            let g = bench::generate(&spec, &input, "v0")?;
            tracing::info!(
                "generated {} clips ({:.1} MB), {} caption windows in {}",
                g.clips,
                g.clip_bytes as f64 / 1e6,
                g.windows,
                input.display()
            );
            if args.generate_only {
                let seconds = started.elapsed().as_secs_f64();
                if args.json {
                    let out = serde_json::json!({
                        "input": input.display().to_string(),
                        "clips": g.clips,
                        "windows": g.windows,
                        "clip_bytes": g.clip_bytes,
                        "seed": args.seed,
                        "seconds": seconds,
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!(
                        "{}: {} clips ({:.1} MB), {} caption windows generated in {seconds:.1}s (seed {})",
                        input.display(),
                        g.clips,
                        g.clip_bytes as f64 / 1e6,
                        g.windows,
                        args.seed
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            ("v0".to_string(), "synthetic".to_string())
        }
    };
    let model = args
        .t5_model
        .clone()
        .expect("clap requires --t5-model without --generate-only");
    let options = ShardOptions {
        input_clip_path: Some(input.display().to_string()),
        output_dataset_path: Some(work.0.join("output").display().to_string()),
        annotation_version: Some(version),
        t5_model: Some(model.clone()),
        input_s3_profile_name: args.input_s3_profile_name.clone(),
        device: args.device.clone(),
        t5_dtype: args.t5_dtype.clone(),
        workers: args.workers,
        ..Default::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match ShardConfig::resolve(options, &env) {
        Ok(cfg) => cfg,
        Err(errors) => anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  ")),
    };
    let (report, load_seconds) = run_job(&cfg)?;
    if let Some(e) = &report.error {
        anyhow::bail!("the benchmarked job failed: {e}");
    }
    let setup = BenchSetup {
        input: input_name,
        model: model.display().to_string(),
        device: cfg.device.to_string(),
        t5_dtype: args.t5_dtype.unwrap_or_else(|| "fp32".to_string()),
        workers: cfg.workers,
        cpu: cpu_name(),
        project_clips: args.project_clips,
    };
    let summary = bench::summarize(setup, &report, load_seconds);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", bench::render_text(&summary));
    }
    drop(work);
    Ok(ExitCode::SUCCESS)
}

/// Runs the shard job of `cfg` as `shardflow shard` does (preflight, model, the dataflow with
/// its progress display); returns its report and the seconds the model took to load.
pub(crate) fn run_job(cfg: &ShardConfig) -> anyhow::Result<(shardflow::report::JobReport, f64)> {
    let storage = Storage::new(cfg.storage.clone());
    let resume = prepare::preflight(cfg, &storage, false, false)?;
    let started = Instant::now();
    let encoder = load_model(&cfg.model_dir, cfg.device, cfg.precision)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let job = ShardJob {
        cfg,
        storage: &storage,
        resume,
        incremental: None,
        dedup: None,
        started,
        progress: Arc::new(Progress::default()),
    };
    let report = job
        .run(encoder)?
        .ok_or_else(|| anyhow::anyhow!("the job wrote no report"))?;
    Ok((report, load_seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn caption_word_ranges_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_range("30..120"), Ok((30, 120)));
        assert_eq!(parse_range("5..5"), Ok((5, 5)));
        for bad in ["30", "0..4", "9..3", "a..4", "3..-1"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
