//! The dataset commands: `verify`, `inspect` and `index`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use shardflow::model::{DeviceSpec, Precision};
use shardflow::storage::Storage;

#[derive(clap::Args)]
pub struct DatasetArgs {
    /// The dataset: an <output>/<version> directory or s3:// prefix.
    dataset: String,
    /// AWS profile for reading it (and writing indexes) [default: $AWS_PROFILE or default].
    #[arg(long)]
    s3_profile_name: Option<String>,
    /// Threads reading tars [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
}

impl DatasetArgs {
    fn open(&self) -> anyhow::Result<(Storage, shardflow::storage::Location, usize)> {
        let opts = shardflow::storage::StorageOptions {
            input_profile: self.s3_profile_name.clone(),
            output_profile: self.s3_profile_name.clone(),
            ..Default::default()
        };
        let storage = Storage::new(opts).with_role(shardflow::storage::Role::Output);
        let root = shardflow::storage::Location::parse(self.dataset.trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.dataset))?;
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        Ok((storage, root, threads))
    }
}

/// What a dataset command may do with the dataset at `root` ([`shardflow::dataset::complete`]):
/// `Err(2)` after printing why when it is not a dataset (or, with `refuse_incomplete`, not a
/// finished one); otherwise the warning printed for an unfinished one, if it is.
fn check_dataset(
    storage: &Storage,
    root: &shardflow::storage::Location,
    refuse_incomplete: bool,
) -> anyhow::Result<Result<Option<String>, ExitCode>> {
    use shardflow::dataset::complete::{check, Completeness};
    let state = check(storage, root)?;
    let Some(message) = state.message(root) else {
        return Ok(Ok(None));
    };
    if state == Completeness::NotADataset || refuse_incomplete {
        eprintln!("error: {message}");
        return Ok(Err(ExitCode::from(2)));
    }
    eprintln!("warning: {message}");
    Ok(Ok(Some(message)))
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Caption field prefix: windows hold `<algorithm>_caption`.
    #[arg(long, default_value = "qwen")]
    captioning_algorithm: String,
    /// Also re-embed sampled windows with this T5 model (CPU) and compare.
    #[arg(long)]
    t5_model: Option<PathBuf>,
    /// Windows to re-embed with --t5-model.
    #[arg(long, default_value_t = 16)]
    sample: usize,
    /// Seed of the window sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest relative difference (|stored - model| / (1 + |stored|)) of a re-embedded value.
    #[arg(long, default_value_t = 2e-2)]
    tolerance: f32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Which indexes: dali (.idx beside every tar) and/or wids (shardindex.json per bin and
    /// stream).
    #[arg(long, value_delimiter = ',', default_value = "dali,wids")]
    index: Vec<String>,
}

pub fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    use shardflow::dataset::verify::{reembed_sample, verify, VerifyOptions};
    let started = Instant::now();
    let (storage, root, threads) = args.dataset.open()?;
    // an unfinished dataset is verified all the same, and is one of the problems
    if let Err(code) = check_dataset(&storage, &root, false)? {
        return Ok(code);
    }
    let encoder = match &args.t5_model {
        Some(m) => Some(crate::load_model(m, DeviceSpec::Cpu, Precision::Fp32)?),
        None => None,
    };
    let opts = VerifyOptions {
        captioning_algorithm: args.captioning_algorithm.clone(),
        threads,
        sample_windows: if encoder.is_some() { args.sample } else { 0 },
        seed: args.seed,
    };
    let mut report = verify(&storage, &root, &opts)?;
    if let Some(enc) = &encoder {
        let mut more = reembed_sample(
            &storage,
            &root,
            &report.windows,
            args.tolerance,
            enc.as_ref(),
        );
        report.problems.append(&mut more);
    }
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            println!("{}: {}", p.path, p.message);
        }
        println!(
            "{}: {} bins, {} tar triples, {} samples, {:.1} MB read in {secs:.1}s ({:.0} MB/s): {}",
            root,
            report.bins,
            report.triples,
            report.samples,
            report.bytes as f64 / 1e6,
            report.bytes as f64 / 1e6 / secs.max(1e-9),
            if report.problems.is_empty() {
                "OK".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        );
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn run_inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (storage, root, threads) = args.dataset.open()?;
    // an unfinished dataset is shown as far as it goes, with the warning, and exit code 1
    let warning = match check_dataset(&storage, &root, false)? {
        Ok(w) => w,
        Err(code) => return Ok(code),
    };
    let bins = shardflow::dataset::inspect::inspect(&storage, &root, threads)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&bins)?);
    } else {
        print!("{}", shardflow::dataset::inspect::table(&bins));
    }
    if warning.is_some() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (storage, root, threads) = args.dataset.open()?;
    let which = shardflow::config::Indexes::parse(&args.index)
        .map_err(|e| anyhow::anyhow!("--index: {e}"))?;
    // indexes of a dataset still being written would describe a part of it
    if let Err(code) = check_dataset(&storage, &root, true)? {
        return Ok(code);
    }
    let r = shardflow::dataset::reindex::index_dataset(&storage, &root, which, threads)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{root}: {} tars ({:.1} MB, {} samples) indexed in {secs:.1}s ({:.0} MB/s): {} DALI indexes, {} wids indexes",
        r.tars,
        r.bytes as f64 / 1e6,
        r.samples,
        r.bytes as f64 / 1e6 / secs.max(1e-9),
        r.dali_files,
        r.wids_files
    );
    Ok(ExitCode::SUCCESS)
}
