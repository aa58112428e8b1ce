//! `shardflow inspect DATASET`: what a dataset holds, per bin — clips, tars, parts, bytes,
//! seconds of video, embedded windows and mean tokens per window — read from the `metas` and
//! `t5_xxl` tars (the `video` tars only by size).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dataset::layout::Layout;
use crate::dataset::par_map;
use crate::dataset::read::visit_tar;
use crate::error::ShardError;
use crate::formats::npy_pickle::read_window_arrays;
use crate::formats::pyjson;
use crate::layout::Stream;
use crate::storage::{Location, Storage};

/// One bin.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BinStats {
    /// Bin path.
    pub bin: String,
    /// Clips (samples).
    pub clips: u64,
    /// Tar triples.
    pub tars: u64,
    /// Part folders.
    pub parts: u64,
    /// Bytes of all three streams' tars.
    pub bytes: u64,
    /// Sum of `num_frames / framerate` over the clips.
    pub video_seconds: f64,
    /// Embedded caption windows.
    pub windows: u64,
    /// Mean embedding rows (tokens, `</s>` included) per window.
    pub mean_tokens_per_window: f64,
}

/// Statistics of every bin, in bin order, and the totals.
pub fn inspect(
    storage: &Storage,
    root: &Location,
    threads: usize,
) -> Result<Vec<BinStats>, ShardError> {
    let layout = Layout::discover(storage, root)?;
    let jobs: Vec<(&String, &String)> = layout
        .bins
        .iter()
        .flat_map(|(bin, tars)| tars.keys().map(move |t| (bin, t)))
        .collect();
    let results = par_map(
        &jobs,
        threads,
        |(bin, tar)| -> Result<(u64, f64, u64, u64), ShardError> {
            let triple = layout.triple(root, bin, tar);
            let mut seconds = 0.0;
            let metas = visit_tar(
                storage,
                &triple.location(Stream::Metas),
                &mut |_: &str| true,
                &mut |_: &str, d: Vec<u8>| {
                    let Ok(v) = pyjson::parse(&d) else { return };
                    let n = v.get("num_frames").and_then(|x| x.as_f64());
                    let fps = v.get("framerate").and_then(|x| x.as_f64());
                    // a clip of no duration (a framerate of 0, or so tiny that the duration
                    // overflows) adds nothing, rather than making the bin's total infinite
                    if let (Some(n), Some(fps)) = (n, fps) {
                        let s = n / fps;
                        if fps > 0.0 && s.is_finite() {
                            seconds += s;
                        }
                    }
                },
            );
            let (mut windows, mut tokens) = (0, 0);
            let t5 = visit_tar(
                storage,
                &triple.location(Stream::T5Xxl),
                &mut |_: &str| true,
                &mut |_: &str, d: Vec<u8>| {
                    if let Ok(arrays) = read_window_arrays(&d) {
                        windows += arrays.len() as u64;
                        tokens += arrays.iter().map(|a| a.shape.0 as u64).sum::<u64>();
                    }
                },
            );
            for (r, k) in [(&metas, Stream::Metas), (&t5, Stream::T5Xxl)] {
                if let Some(e) = &r.error {
                    return Err(ShardError::BadFile {
                        location: triple.rel(k),
                        message: format!("{e} (run shardflow verify)"),
                    });
                }
            }
            Ok((metas.members.len() as u64, seconds, windows, tokens))
        },
    );
    let mut by_bin: BTreeMap<&str, (BinStats, u64)> = BTreeMap::new();
    for ((bin, tar), r) in jobs.iter().zip(results) {
        let (clips, seconds, windows, tokens) = r?;
        let (s, tok) = by_bin.entry(bin.as_str()).or_default();
        s.bin = bin.to_string();
        s.clips += clips;
        s.tars += 1;
        s.video_seconds += seconds;
        s.windows += windows;
        *tok += tokens;
        s.bytes += layout.bins[*bin][*tar].values().flatten().sum::<u64>();
    }
    Ok(by_bin
        .into_iter()
        .map(|(bin, (mut s, tokens))| {
            s.parts = layout.bins[bin]
                .keys()
                .map(|t| t.split('/').next().unwrap_or(""))
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64;
            s.mean_tokens_per_window = if s.windows > 0 {
                tokens as f64 / s.windows as f64
            } else {
                0.0
            };
            s
        })
        .collect())
}

/// A terminal table of `bins` with a total row.
pub fn table(bins: &[BinStats]) -> String {
    let mut rows = vec![[
        "bin".to_string(),
        "clips".into(),
        "tars".into(),
        "parts".into(),
        "MB".into(),
        "video h".into(),
        "windows".into(),
        "tokens/window".into(),
    ]];
    let mut total = BinStats {
        bin: "total".into(),
        ..Default::default()
    };
    let mut tokens = 0.0;
    for b in bins {
        total.clips += b.clips;
        total.tars += b.tars;
        total.parts += b.parts;
        total.bytes += b.bytes;
        total.video_seconds += b.video_seconds;
        total.windows += b.windows;
        tokens += b.mean_tokens_per_window * b.windows as f64;
    }
    total.mean_tokens_per_window = if total.windows > 0 {
        tokens / total.windows as f64
    } else {
        0.0
    };
    for b in bins.iter().chain(std::iter::once(&total)) {
        rows.push([
            b.bin.clone(),
            b.clips.to_string(),
            b.tars.to_string(),
            b.parts.to_string(),
            format!("{:.1}", b.bytes as f64 / 1e6),
            format!("{:.2}", b.video_seconds / 3600.0),
            b.windows.to_string(),
            format!("{:.1}", b.mean_tokens_per_window),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
