//! The `shardflow` command: parse options, load the model, run a dataflow, report.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shardflow::config::ShardArgs;
use shardflow::model::{t5, DeviceSpec, ModelError, Precision, TextEncoder};
use shardflow::prepare;

mod cmd;

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
    Encode(cmd::encode::EncodeArgs),
    /// Run `shard` as N local processes talking over loopback (timely cluster mode).
    Launch(cmd::launch::LaunchArgs),
    /// Check a written dataset end to end; exit 0 only when every check holds.
    Verify(cmd::tools::VerifyArgs),
    /// Per-bin statistics of a written dataset.
    Inspect(cmd::tools::InspectArgs),
    /// Write DALI and/or wids indexes for an existing dataset (reading each tar once).
    Index(cmd::tools::IndexArgs),
    /// Write a dataset in another trainer's format (cosmos-predict2's directory dataset).
    Export(cmd::export::ExportArgs),
    /// How fast a shard job runs on this machine and which stage bounds it: runs the real job
    /// on a generated (or sampled real) input in a temporary directory and extrapolates.
    Bench(Box<cmd::bench::BenchArgs>),
    /// Shard the small sample dataset and tiny model built into this binary into OUT (no
    /// download): proves an install works and shows what a dataset looks like.
    Demo(cmd::demo::DemoArgs),
}

#[cfg(feature = "cuda")]
impl Command {
    /// The device the command's encoder will run on, as far as it can be told before it
    /// starts (`launch` leaves it to the processes it starts; an invalid one is left to the
    /// command, which says what is wrong).
    fn device(&self) -> Option<DeviceSpec> {
        let name = match self {
            Command::Shard(args) => args.merged_options().ok()?.device,
            Command::Reshard(args) => args.shard.merged_options().ok()?.device,
            Command::Encode(args) => return Some(args.device),
            Command::Bench(args) => args.device.clone(),
            Command::Demo(args) => Some(args.device.clone()),
            _ => None,
        };
        name?.parse().ok()
    }
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHARDFLOW_LOG")
                // object_store logs every retried request at info: keep a run's log readable
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,object_store=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false)
        .init();
    cmd::peer::install_peer_failure_hook();
    let cli = Cli::parse();
    // before the command does anything: it may start again with the NVIDIA wheels' libraries
    #[cfg(feature = "cuda")]
    if let Some(DeviceSpec::Cuda(_)) = cli.command.device() {
        cmd::cuda_wheels::use_wheel_libraries();
    }
    let result = match cli.command {
        Command::Shard(args) => {
            let request = if args.append {
                prepare::IncrementalRequest::Append
            } else {
                prepare::IncrementalRequest::None
            };
            cmd::shard::run_shard(*args, request)
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
            cmd::shard::run_shard(args.shard, request)
        }
        Command::Encode(args) => cmd::encode::run_encode(args),
        Command::Launch(args) => cmd::launch::run_launch(args),
        Command::Verify(args) => cmd::tools::run_verify(args),
        Command::Inspect(args) => cmd::tools::run_inspect(args),
        Command::Index(args) => cmd::tools::run_index(args),
        Command::Export(args) => cmd::export::run_export(args),
        Command::Bench(args) => cmd::bench::run_bench(*args),
        Command::Demo(args) => cmd::demo::run_demo(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain_message(&e));
            ExitCode::from(2)
        }
    }
}

/// Whether log lines are coloured: only on a terminal, and not when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>); a file or pipe gets plain text.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
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

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }
}
