//! The dataset commands: `verify`, `inspect` and `index`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use shardflow::journal::{JOB_DIR, LOCK_FILE};
use shardflow::model::{DeviceSpec, Precision};
use shardflow::storage::{LockError, Storage};

#[derive(clap::Args)]
pub(crate) struct DatasetArgs {
    /// The dataset: a shard job's output path (every annotation version below it) or one
    /// version directory (`<output>/<version>`), local or an object-store URI.
    pub(crate) dataset: String,
    /// Read only this annotation version of the output path.
    #[arg(long)]
    annotation_version: Option<String>,
    /// AWS profile for reading it (and writing indexes) [default: $AWS_PROFILE or default].
    #[arg(long)]
    s3_profile_name: Option<String>,
    /// Threads reading tars [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
}

impl DatasetArgs {
    /// The storage, the version directories to read (each said on stderr) and the threads.
    pub(crate) fn open(
        &self,
    ) -> anyhow::Result<(Storage, Vec<shardflow::storage::Location>, usize)> {
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
        let versions = shardflow::dataset::versions::resolve(
            &storage,
            &root,
            self.annotation_version.as_deref(),
        )?;
        for v in &versions {
            eprintln!("reading {v}");
        }
        Ok((storage, versions, threads))
    }
}

/// What a dataset command may do with the dataset at `root` ([`shardflow::dataset::complete`]):
/// `Err(2)` after printing why when it is not a dataset (or, with `refuse_incomplete`, not a
/// finished one); otherwise the warning printed for an unfinished one, if it is.
pub(crate) fn check_dataset(
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
    /// Also hash every tar and compare with the version's SHA256SUMS manifest (a missing
    /// manifest, a tar it does not list, and every mismatch are problems).
    #[arg(long)]
    checksums: bool,
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

/// Runs `each` on every version directory, printing JSON results as one document (an object
/// keyed by directory when there are several); the exit code is the worst one.
fn for_each_version<T: serde::Serialize>(
    roots: &[shardflow::storage::Location],
    json: bool,
    mut each: impl FnMut(&shardflow::storage::Location) -> anyhow::Result<(ExitCode, Option<T>)>,
) -> anyhow::Result<ExitCode> {
    let mut worst = (0u8, ExitCode::SUCCESS);
    let mut docs = serde_json::Map::new();
    for root in roots {
        let (code, doc) = each(root)?;
        let rank = if code == ExitCode::SUCCESS {
            0
        } else if code == ExitCode::from(1) {
            1
        } else {
            2
        };
        if rank > worst.0 {
            worst = (rank, code);
        }
        if let Some(doc) = doc {
            docs.insert(root.to_string(), serde_json::to_value(doc)?);
        }
    }
    if json {
        let out = match (roots.len(), docs.len()) {
            (1, 1) => docs.into_iter().next().map(|(_, v)| v).expect("one"),
            _ => serde_json::Value::Object(docs),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(worst.1)
}

pub fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (storage, roots, threads) = args.dataset.open()?;
    let encoder = match &args.t5_model {
        Some(m) => Some(crate::load_model(m, DeviceSpec::Cpu, Precision::Fp32)?),
        None => None,
    };
    for_each_version(&roots, args.json, |root| {
        verify_one(&args, &storage, root, threads, encoder.as_deref())
    })
}

fn verify_one(
    args: &VerifyArgs,
    storage: &Storage,
    root: &shardflow::storage::Location,
    threads: usize,
    encoder: Option<&dyn shardflow::model::TextEncoder>,
) -> anyhow::Result<(ExitCode, Option<shardflow::dataset::verify::VerifyReport>)> {
    use shardflow::dataset::verify::{reembed_sample, verify, VerifyOptions};
    let started = Instant::now();
    let (storage, root) = (storage.clone(), root.clone());
    // an unfinished dataset is verified all the same, and is one of the problems
    if let Err(code) = check_dataset(&storage, &root, false)? {
        return Ok((code, None));
    }
    let opts = VerifyOptions {
        captioning_algorithm: args.captioning_algorithm.clone(),
        threads,
        sample_windows: if encoder.is_some() { args.sample } else { 0 },
        seed: args.seed,
        checksums: args.checksums,
    };
    let mut report = verify(&storage, &root, &opts)?;
    if let Some(enc) = encoder {
        let mut more = reembed_sample(
            &storage,
            &root,
            report.names,
            &report.windows,
            args.tolerance,
            enc,
        );
        report.problems.append(&mut more);
    }
    if args.checksums {
        let mut sums =
            shardflow::dataset::verify::check_checksums(&storage, &root, threads, &report.sha256)?;
        report.checksums_checked = Some(sums.tars);
        report.bytes += sums.bytes;
        report.problems.append(&mut sums.problems);
        report.problems.sort();
    }
    let secs = started.elapsed().as_secs_f64();
    if !args.json {
        for p in &report.problems {
            println!("{}: {}", p.path, p.message);
        }
        if let Some(n) = report.checksums_checked {
            println!("{root}: {n} tars hashed and compared with SHA256SUMS");
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
    let code = if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    Ok((code, Some(report)))
}

pub fn run_inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (storage, roots, threads) = args.dataset.open()?;
    for_each_version(&roots, args.json, |root| {
        // an unfinished dataset is shown as far as it goes, with the warning, and exit code 1
        let warning = match check_dataset(&storage, root, false)? {
            Ok(w) => w,
            Err(code) => return Ok((code, None)),
        };
        let bins = shardflow::dataset::inspect::inspect(&storage, root, threads)?;
        if !args.json {
            if roots.len() > 1 {
                println!("{root}:");
            }
            print!("{}", shardflow::dataset::inspect::table(&bins));
        }
        let code = if warning.is_some() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
        Ok((code, Some(bins)))
    })
}

pub fn run_index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let (storage, roots, threads) = args.dataset.open()?;
    let which = shardflow::config::Indexes::parse(&args.index)
        .map_err(|e| anyhow::anyhow!("--index: {e}"))?;
    for_each_version::<()>(&roots, false, |root| {
        Ok((index_one(&storage, root, which, threads)?, None))
    })
}

fn index_one(
    storage: &Storage,
    root: &shardflow::storage::Location,
    which: shardflow::config::Indexes,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (storage, root) = (storage.clone(), root.clone());
    // indexes of a dataset still being written would describe a part of it
    if let Err(code) = check_dataset(&storage, &root, true)? {
        return Ok(code);
    }
    // the output lock, held while the indexes are written: a job started meanwhile is
    // refused as while another job writes
    let lock_file = root.join(JOB_DIR).join(LOCK_FILE);
    let lock = match storage.lock(&lock_file) {
        Ok(l) => l,
        Err(e @ LockError::Held { .. }) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    // a job may have started and ended (or been killed) between the check and the lock
    let state = shardflow::dataset::complete::check_contents(&storage, &root);
    let r = match state {
        Ok(state) => match state.message(&root) {
            Some(message) => {
                lock.discard();
                eprintln!("error: {message}");
                return Ok(ExitCode::from(2));
            }
            None => shardflow::dataset::reindex::index_dataset(&storage, &root, which, threads),
        },
        Err(e) => Err(e),
    };
    // removes the lock file (and the job folder taking it created, in a dataset without one)
    lock.discard();
    let r = r?;
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
    if r.sha256sums {
        println!("{root}: SHA256SUMS written (check a copy with `sha256sum -c SHA256SUMS` in it)");
    } else {
        println!("{root}: SHA256SUMS already present, left as it is");
    }
    Ok(ExitCode::SUCCESS)
}
