//! `shardflow demo [OUT]`: proves a fresh install works without downloading anything. Writes
//! the sample dataset and the tiny T5 built into the binary to OUT, runs the real shard job on
//! them in-process (as `bench` does), and prints what it wrote and how to read it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use burn::tensor::backend::Backend;
use shardflow::config::{ShardConfig, ShardOptions};
use shardflow::model::{dispatch, BackendJob, DeviceSpec, Precision};

mod files;

/// Where the sample's metadata says its clips are (`clip_location`); remapped to OUT/input.
const SAMPLE_ROOT: &str = "/cosmos-curate-fixtures/sample-dataset";

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Folder to write into: OUT/input (the sample clips and metadata), OUT/t5-tiny (the
    /// model) and OUT/dataset (the webdataset). Must not exist, or be empty.
    #[arg(default_value = "shardflow-demo")]
    out: PathBuf,
    /// Where the encoder runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Worker threads [default: available cores].
    #[arg(long)]
    workers: Option<usize>,
}

pub(crate) fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let out = std::path::absolute(&args.out)?;
    let in_use = std::fs::read_dir(&out).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !in_use,
        "{} is not empty; give another folder (shardflow demo OUT)",
        out.display()
    );
    // a device that cannot be used is said before anything is written
    let device: DeviceSpec = args
        .device
        .parse()
        .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    dispatch(device, Precision::Fp32, Nothing)?;
    let input = out.join("input");
    let model = out.join("t5-tiny");
    let dataset = out.join("dataset");
    for (path, bytes) in files::INPUT {
        let relative = path.strip_prefix("sample-dataset/").unwrap_or(path);
        write(&input.join(relative), bytes)?;
    }
    for (path, bytes) in files::MODEL {
        write(&out.join(path), bytes)?;
    }
    let options = ShardOptions {
        input_clip_path: Some(input.display().to_string()),
        output_dataset_path: Some(dataset.display().to_string()),
        annotation_version: Some("v0".into()),
        t5_model: Some(model.clone()),
        device: Some(args.device),
        workers: args.workers,
        remap_clip_location: Some(vec![format!("{SAMPLE_ROOT}={}", input.display())]),
        // the sample holds one deliberately broken metadata file
        max_rejected_fraction: Some(0.05),
        ..Default::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = match ShardConfig::resolve(options, &env) {
        Ok(cfg) => cfg,
        Err(errors) => anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  ")),
    };
    let (report, _) = crate::cmd::bench::run_job(&cfg)?;
    if let Some(e) = &report.error {
        anyhow::bail!("the demo's shard job failed: {e}");
    }
    let c = &report.counts;
    let version = cfg.version_dir();
    println!(
        "wrote {version}: {} clips in {} tars ({} bins), {} invalid, {} dropped (no bin), {} rejected (one broken metadata file, on purpose), in {:.1}s",
        c.written,
        c.tars,
        report.bins.len(),
        c.invalid,
        c.dropped_no_bin,
        c.rejected.values().sum::<u64>(),
        report.wall_seconds
    );
    print!("{}", guide(&out));
    Ok(ExitCode::SUCCESS)
}

/// A job that does nothing: [`dispatch`] checks the device (CUDA's driver and libraries)
/// before it runs one.
struct Nothing;

impl BackendJob for Nothing {
    type Output = ();
    fn run<B: Backend>(self, _device: B::Device) {}
}

/// What the demo wrote and how to check and read it.
fn guide(out: &Path) -> String {
    let out = out.display();
    format!(
        "  input:   {out}/input    H.264 clips and their metadata, as cosmos-curate's splitting pipeline writes them
  model:   {out}/t5-tiny  a tiny random-weight T5 (the embeddings show the format, not meaning)
  dataset: {out}/dataset  <bin>/{{video,t5_xxl,metas}}/part_000000/*.tar, wdinfo.json per bin,
                 SHA256SUMS, and _shardflow/report.json

check it:
  shardflow verify {out}/dataset --checksums

read it in Python (pip install webdataset numpy):
  import glob, json, pickle, webdataset as wds
  for tar in sorted(glob.glob(\"{out}/dataset/v0/**/t5_xxl/part_*/*.tar\", recursive=True)):
      metas = tar.replace(\"/t5_xxl/\", \"/metas/\")
      for emb, meta in zip(wds.WebDataset(tar, shardshuffle=False), wds.WebDataset(metas, shardshuffle=False)):
          windows = pickle.loads(emb[\"pickle\"])  # one (tokens, d_model) float16 array per caption
          print(emb[\"__key__\"], json.loads(meta[\"json\"])[\"num_frames\"], [w.shape for w in windows])
"
    )
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::files;

    /// The embedded list is the sample dataset's clips and metadata, all of them.
    #[test]
    fn embedded_sample_is_the_whole_sample() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut on_disk = Vec::new();
        let mut stack = vec![
            base.join("sample-dataset/clips"),
            base.join("sample-dataset/metas"),
        ];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&base).unwrap();
                    on_disk.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = files::INPUT.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        for (path, bytes) in files::INPUT.iter().chain(files::MODEL) {
            assert_eq!(*bytes, std::fs::read(base.join(path)).unwrap(), "{path}");
        }
    }
}
