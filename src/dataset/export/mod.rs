//! `shardflow export --format cosmos-predict2-dir DATASET OUT`: a written dataset as the
//! directory dataset that cosmos-predict2's post-training reads
//! (`cosmos_predict2/data/dataset_video.py`): per entry `videos/<id>.mp4`,
//! `t5_xxl/<id>.pickle` (a pickled list of exactly one `(L, d_model)` array: the caption's
//! embedding) and `metas/<id>.txt` (the prompt).
//!
//! One entry per captioned window, `<span_uuid>_<window index>` ([`windows`]); its video is
//! the clip when the window covers it, else the window's frames re-encoded ([`video`]).
//! Every file is written atomically, so an entry whose three files exist is complete and a
//! second run skips it: re-running after a kill finishes the export. A tar triple is read
//! metas first (kept: small), then `t5_xxl` and `video` one member at a time, so memory is
//! one member plus one tar's metadata.

pub mod video;
pub mod windows;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::dataset::index::split_name;
use crate::dataset::layout::{Layout, TripleAt};
use crate::dataset::par_map;
use crate::dataset::read::visit_tar;
use crate::error::ShardError;
use crate::formats::npy_pickle::{read_window_arrays, write_array_list};
use crate::formats::pyjson;
use crate::layout::Stream;
use crate::storage::{Location, Storage};
use crate::text::shown;

pub use windows::{entry_id, plan_clip, ClipPlan, Entry};

/// How to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Caption field prefix: windows hold `<algorithm>_caption`.
    pub captioning_algorithm: String,
    /// Windows with fewer frames are skipped.
    pub min_frames: u64,
    /// Tar triples exported at once.
    pub threads: usize,
    /// The `ffmpeg` program that cuts windows.
    pub ffmpeg: String,
}

/// A sample or tar that could not be exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The tar (relative to the dataset) and member, or the entry's file.
    pub path: String,
    /// Why.
    pub message: String,
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Entries written.
    pub written: u64,
    /// Of those, videos cut and re-encoded (the others are the clip's bytes).
    pub cut: u64,
    /// Entries whose three files were there already.
    pub skipped_existing: u64,
    /// Windows without a caption.
    pub uncaptioned: u64,
    /// Captioned windows shorter than `min_frames`.
    pub too_short: u64,
    /// What failed.
    pub failures: Vec<Failure>,
}

impl ExportReport {
    fn add(&mut self, o: ExportReport) {
        self.written += o.written;
        self.cut += o.cut;
        self.skipped_existing += o.skipped_existing;
        self.uncaptioned += o.uncaptioned;
        self.too_short += o.too_short;
        self.failures.extend(o.failures);
    }
}

/// Exports the dataset version directory `root` into `out` (see the module doc). Errors only
/// when `root` or `out` cannot be listed; a bad sample or tar is a [`Failure`] of the report
/// and the rest is exported.
pub fn export(
    storage: &Storage,
    root: &Location,
    out: &Location,
    opts: &ExportOptions,
) -> Result<ExportReport, ShardError> {
    let layout = Layout::discover(storage, root)?;
    let existing: HashSet<String> = match storage.list(out) {
        Ok(l) => l.into_iter().map(|l| l.rel).collect(),
        Err(e) if e.not_found => HashSet::new(),
        Err(e) => return Err(e.into()),
    };
    let jobs: Vec<(&String, &String)> = layout
        .bins
        .iter()
        .flat_map(|(bin, tars)| tars.keys().map(move |t| (bin, t)))
        .collect();
    let results = par_map(&jobs, opts.threads, |(bin, tar)| {
        let sizes = &layout.bins[*bin][*tar];
        let triple = layout.triple(root, bin, tar);
        if let Some((k, _)) = sizes.iter().find(|(_, s)| s.is_none()) {
            return ExportReport {
                failures: vec![Failure {
                    path: triple.rel(k),
                    message: format!("missing (the other streams have {tar})"),
                }],
                ..Default::default()
            };
        }
        export_triple(storage, triple, out, &existing, opts)
    });
    let mut report = ExportReport::default();
    for r in results {
        report.add(r);
    }
    Ok(report)
}

/// Exports one tar triple.
fn export_triple(
    storage: &Storage,
    triple: TripleAt<'_>,
    out: &Location,
    existing: &HashSet<String>,
    opts: &ExportOptions,
) -> ExportReport {
    let mut report = ExportReport::default();
    let field = format!("{}_caption", opts.captioning_algorithm);
    let rel = |s: Stream| triple.rel(s);
    let fail = |report: &mut ExportReport, path: String, message: String| {
        report.failures.push(Failure { path, message })
    };
    // the windows to write, by sample key
    let mut pending: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut bad = Vec::new();
    let metas = visit_tar(
        storage,
        &triple.location(Stream::Metas),
        &mut |name: &str| split_name(name).1 == "json",
        &mut |name: &str, data: Vec<u8>| {
            let key = split_name(name).0;
            let plan = pyjson::parse(&data)
                .map_err(|e| e.to_string())
                .and_then(|meta| plan_clip(&meta, key, &field, opts.min_frames));
            match plan {
                Ok(plan) => {
                    report.uncaptioned += plan.uncaptioned;
                    report.too_short += plan.too_short;
                    let (done, todo): (Vec<Entry>, Vec<Entry>) = plan
                        .entries
                        .into_iter()
                        .partition(|e| e.files().iter().all(|f| existing.contains(f)));
                    report.skipped_existing += done.len() as u64;
                    if !todo.is_empty() {
                        pending.insert(key.to_string(), todo);
                    }
                }
                Err(e) => bad.push((name.to_string(), e)),
            }
        },
    );
    for (name, e) in bad {
        fail(
            &mut report,
            format!("{}:{}", rel(Stream::Metas), shown(&name)),
            e,
        );
    }
    if let Some(e) = metas.error {
        fail(
            &mut report,
            rel(Stream::Metas),
            format!("does not read to the end: {e}"),
        );
    }
    if pending.is_empty() {
        return report;
    }
    // prompts and embeddings first; the keys whose entries got them wait for their video
    let mut embedded: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let t5 = visit_tar(
        storage,
        &triple.location(Stream::T5Xxl),
        &mut |name: &str| pending.contains_key(split_name(name).0),
        &mut |name: &str, data: Vec<u8>| {
            let key = split_name(name).0;
            seen.insert(key.to_string());
            let member = format!("{}:{}", rel(Stream::T5Xxl), shown(name));
            let arrays = match read_window_arrays(&data) {
                Ok(a) => a,
                Err(e) => return fail(&mut report, member, e.to_string()),
            };
            for e in &pending[key] {
                let Some(array) = arrays.get(e.embedding) else {
                    fail(
                        &mut report,
                        member.clone(),
                        format!(
                            "window {} is captioned embedding {}, but the pickle holds {} arrays",
                            e.window,
                            e.embedding,
                            arrays.len()
                        ),
                    );
                    continue;
                };
                let [_, pickle, text] = e.files();
                let wrote = storage
                    .put(&out.join(&text), e.caption.as_bytes())
                    .and_then(|()| {
                        storage.put(&out.join(&pickle), &write_array_list(&[array.view()]))
                    });
                match wrote {
                    Ok(()) => {
                        embedded.insert(e.id.clone());
                    }
                    Err(err) => fail(&mut report, out.join(&pickle).to_string(), err.to_string()),
                }
            }
        },
    );
    if let Some(e) = t5.error {
        fail(
            &mut report,
            rel(Stream::T5Xxl),
            format!("does not read to the end: {e}"),
        );
    }
    let mut seen_video: HashSet<String> = HashSet::new();
    let video = visit_tar(
        storage,
        &triple.location(Stream::Video),
        &mut |name: &str| pending.contains_key(split_name(name).0),
        &mut |name: &str, data: Vec<u8>| {
            let key = split_name(name).0;
            seen_video.insert(key.to_string());
            for e in pending[key].iter().filter(|e| embedded.contains(&e.id)) {
                let [mp4, _, _] = e.files();
                let bytes = if e.whole {
                    Ok(data.clone())
                } else {
                    video::cut(&opts.ffmpeg, &data, e.start, e.end)
                };
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(err) => {
                        fail(
                            &mut report,
                            format!("{}:{}", rel(Stream::Video), shown(name)),
                            format!(
                                "window {} (frames {}..={}): {err}",
                                e.window, e.start, e.end
                            ),
                        );
                        continue;
                    }
                };
                match storage.put(&out.join(&mp4), &bytes) {
                    Ok(()) => {
                        report.written += 1;
                        report.cut += u64::from(!e.whole);
                    }
                    Err(err) => fail(&mut report, out.join(&mp4).to_string(), err.to_string()),
                }
            }
        },
    );
    if let Some(e) = video.error {
        fail(
            &mut report,
            rel(Stream::Video),
            format!("does not read to the end: {e}"),
        );
    }
    for key in pending.keys() {
        for (k, seen) in [(Stream::T5Xxl, &seen), (Stream::Video, &seen_video)] {
            if !seen.contains(key) {
                fail(
                    &mut report,
                    rel(k),
                    format!("no .{} member for key {}", k.ext(), shown(key)),
                );
            }
        }
    }
    report
}
