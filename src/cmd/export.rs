//! `shardflow export`: a written dataset in another trainer's format.

use std::process::ExitCode;

use shardflow::dataset::export::{export, ExportOptions};
use shardflow::storage::Location;

use super::tools::{check_dataset, DatasetArgs};

/// The formats `export` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    /// cosmos-predict2's post-training directory dataset
    /// (`cosmos_predict2/data/dataset_video.py`): `videos/<id>.mp4`, `t5_xxl/<id>.pickle`
    /// (a pickled list of one `(L, d_model)` array) and `metas/<id>.txt` (the prompt).
    #[value(name = "cosmos-predict2-dir")]
    CosmosPredict2Dir,
}

#[derive(clap::Args)]
#[command(after_help = "\
One entry per captioned window, named <span_uuid>_<window index>. A window that covers the \
whole clip gets the clip's mp4 unchanged; any other window is cut with ffmpeg and re-encoded \
(H.264, CRF 18) to exactly its frames, because a stream copy can cut only at keyframes and \
would add or lose frames. Files appear only when complete, and an entry whose three files \
exist is skipped: re-run after an interruption to finish the export.")]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum)]
    format: ExportFormat,
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Where to write: a local directory or an object-store URI.
    out: String,
    /// Caption field prefix: windows hold `<algorithm>_caption`.
    #[arg(long, default_value = "qwen")]
    captioning_algorithm: String,
    /// Skip windows of fewer frames (counted in the summary).
    #[arg(long, default_value_t = 0)]
    min_frames: u64,
    /// The ffmpeg program that cuts windows.
    #[arg(long, default_value = "ffmpeg")]
    ffmpeg: String,
}

pub fn run_export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let ExportFormat::CosmosPredict2Dir = args.format;
    let (storage, roots, threads) = args.dataset.open()?;
    // two versions would write entries of the same clips over each other
    let [root] = roots.as_slice() else {
        anyhow::bail!(
            "{} holds {} annotation versions: name one with --annotation-version",
            args.dataset.dataset,
            roots.len()
        );
    };
    // an unfinished dataset would export a part of it
    if let Err(code) = check_dataset(&storage, root, true)? {
        return Ok(code);
    }
    let out = Location::parse(args.out.trim_end_matches('/'))
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out))?;
    let opts = ExportOptions {
        captioning_algorithm: args.captioning_algorithm,
        min_frames: args.min_frames,
        threads,
        ffmpeg: args.ffmpeg,
    };
    let report = export(&storage, root, &out, &opts)?;
    for f in &report.failures {
        eprintln!("error: {}: {}", f.path, f.message);
    }
    println!(
        "{out}: {} entries written ({} cut), {} already there, {} windows without a caption, {} shorter than --min-frames, {} failed",
        report.written,
        report.cut,
        report.skipped_existing,
        report.uncaptioned,
        report.too_short,
        report.failures.len()
    );
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
