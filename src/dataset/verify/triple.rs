//! The checks of one tar triple.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use super::predict25::{check_dicts, trainer_meta, TrainerMeta};
use super::{Problem, StoredWindow, TripleResult, VerifyOptions};
use crate::dataset::index::split_name;
use crate::dataset::layout::Layout;
use crate::dataset::read::{visit_tar_hashing, TarRead};
use crate::formats::npy_pickle::{read_array_list, read_window_dicts, F16Array};
use crate::formats::pyjson::{self, PyValue};
use crate::layout::{OutputLayout, PerStream, Stream};
use crate::storage::{Location, Storage};
use crate::text::shown;

/// What verification keeps of one `.pickle` member (never its bytes).
struct PickleFacts {
    /// Per embedded window's array: rows, columns, all values finite; or why it does not
    /// decode.
    arrays: Result<Vec<(usize, usize, bool)>, String>,
    /// A list of per-window dicts (the cosmos-predict2.5 layout): each dict's keys.
    dicts: Option<Vec<Vec<String>>>,
}

/// What verification keeps of one `.json` member.
enum MetaFacts {
    /// It does not parse.
    Invalid(String),
    /// Its `span_uuid` and the captions of its windows, in order.
    Parsed {
        span_uuid: Option<String>,
        captions: Vec<String>,
        /// The cosmos-predict2.5 layout's keys, checked.
        trainer: Option<TrainerMeta>,
    },
}

fn pickle_facts(data: &[u8]) -> PickleFacts {
    let facts = |a: &F16Array| (a.shape.0, a.shape.1, a.data.iter().all(|x| x.is_finite()));
    match read_array_list(data) {
        Ok(arrays) => PickleFacts {
            arrays: Ok(arrays.iter().map(facts).collect()),
            dicts: None,
        },
        Err(e) => match read_window_dicts(data) {
            Ok(dicts) => PickleFacts {
                arrays: Ok(dicts.iter().flatten().map(|(_, a)| facts(a)).collect()),
                dicts: Some(
                    dicts
                        .iter()
                        .map(|d| d.iter().map(|(k, _)| k.clone()).collect())
                        .collect(),
                ),
            },
            Err(_) => PickleFacts {
                arrays: Err(e.to_string()),
                dicts: None,
            },
        },
    }
}

fn meta_facts(data: &[u8], field: &str) -> MetaFacts {
    let json = match pyjson::parse(data) {
        Ok(v) => v,
        Err(e) => return MetaFacts::Invalid(e.to_string()),
    };
    let captions = json
        .get("windows")
        .and_then(|w| w.as_array())
        .map(|ws| {
            ws.iter()
                .filter_map(|w| match w.get(field) {
                    Some(PyValue::Str(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    MetaFacts::Parsed {
        span_uuid: json
            .get("span_uuid")
            .and_then(|u| u.as_str())
            .map(str::to_string),
        captions,
        trainer: trainer_meta(&json, field),
    }
}

/// Each stream's wids `shardindex.json`, read and parsed once for all of its tars (a stream
/// of thousands of tars would otherwise read its index thousands of times): per tar URL, its
/// `nsamples` and `filesize`; or why the index cannot be used.
#[derive(Default)]
pub(crate) struct WidsIndexes {
    by_path: Mutex<HashMap<String, Arc<OnceLock<WidsIndex>>>>,
}

type WidsIndex = Result<HashMap<String, (Option<u64>, Option<u64>)>, String>;

impl WidsIndexes {
    /// `f` of the index at `wids`, read by the first caller.
    fn with<R>(
        &self,
        storage: &Storage,
        root: &Location,
        wids: &str,
        f: impl FnOnce(&WidsIndex) -> R,
    ) -> R {
        let cell = self
            .by_path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(wids.to_string())
            .or_default()
            .clone();
        f(cell.get_or_init(|| {
            let bytes = storage
                .read(&root.join(wids))
                .map_err(|e| format!("cannot be read: {}", e.message))?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("is not valid JSON: {e}"))?;
            Ok(v["shardlist"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let url = e["url"].as_str()?;
                    Some((
                        url.to_string(),
                        (e["nsamples"].as_u64(), e["filesize"].as_u64()),
                    ))
                })
                .collect())
        }))
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn check_triple(
    storage: &Storage,
    root: &Location,
    layout: &Layout,
    bin: &str,
    tar: &str,
    sizes: &PerStream<Option<u64>>,
    opts: &VerifyOptions,
    wids_indexes: &WidsIndexes,
) -> TripleResult {
    let mut out = TripleResult {
        problems: vec![],
        samples: 0,
        bytes: 0,
        d_model: BTreeSet::new(),
        windows: vec![],
        layouts: BTreeSet::new(),
        sha256: vec![],
    };
    let triple = layout.triple(root, bin, tar);
    let rel = |s: Stream| triple.rel(s);
    let field = format!("{}_caption", opts.captioning_algorithm);
    // members are reduced to facts as they stream by: memory is one member, not a tar
    let mut pickles: BTreeMap<String, PickleFacts> = BTreeMap::new();
    let mut metas: Vec<(String, MetaFacts)> = Vec::new();
    let mut reads: PerStream<Option<TarRead>> = PerStream::default();
    for (k, size) in sizes.iter() {
        if size.is_none() {
            out.problems.push(Problem {
                path: rel(k),
                message: format!("missing (the other streams have {tar})"),
            });
            continue;
        }
        let r = visit_tar_hashing(
            storage,
            &triple.location(k),
            &mut |_: &str| k != Stream::Video,
            &mut |name: &str, data: Vec<u8>| {
                let key = split_name(name).0.to_string();
                match k {
                    // mp4 members are not read (see above)
                    Stream::Video => {}
                    Stream::T5Xxl => {
                        pickles.insert(key, pickle_facts(&data));
                    }
                    Stream::Metas => metas.push((name.to_string(), meta_facts(&data, &field))),
                }
            },
            opts.checksums,
        );
        out.bytes += r.bytes;
        if let Some(sha256) = &r.sha256 {
            out.sha256.push((rel(k), sha256.clone()));
        }
        if let Some(e) = &r.error {
            out.problems.push(Problem {
                path: rel(k),
                message: format!("does not read to the end: {e}"),
            });
        }
        check_indexes(
            storage,
            root,
            layout,
            wids_indexes,
            &rel(k),
            &r,
            &mut out.problems,
        );
        reads[k] = Some(r);
    }
    // keys per stream, in order
    let mut keys: PerStream<Option<Vec<String>>> = PerStream::default();
    for (k, r) in reads.iter() {
        let Some(r) = r else { continue };
        let mut seen = BTreeSet::new();
        let mut ks = Vec::new();
        for m in &r.members {
            let (key, ext) = split_name(&m.name);
            if ext != k.ext() {
                out.problems.push(Problem {
                    path: format!("{}:{}", rel(k), shown(&m.name)),
                    message: format!("a {k} tar member should end in .{}", k.ext()),
                });
            }
            if !seen.insert(key.to_string()) {
                out.problems.push(Problem {
                    path: format!("{}:{}", rel(k), shown(&m.name)),
                    message: format!("key {} appears twice", shown(key)),
                });
            }
            ks.push(key.to_string());
        }
        keys[k] = Some(ks);
    }
    let present: Vec<&Vec<String>> = keys.values().flatten().collect();
    if let Some(first) = present.first() {
        out.samples = first.len() as u64;
        for (k, ks) in keys.iter() {
            let Some(ks) = ks else { continue };
            if ks != *first {
                let at = ks
                    .iter()
                    .zip(first.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(ks.len().min(first.len()));
                out.problems.push(Problem {
                    path: rel(k),
                    message: format!(
                        "keys differ from the other streams' from position {at} ({} vs {})",
                        ks.get(at).map_or("end".into(), |s| shown(s)),
                        first.get(at).map_or("end".into(), |s| shown(s))
                    ),
                });
            }
        }
    }
    // members: json ↔ pickle
    if reads[Stream::T5Xxl].is_none() || reads[Stream::Metas].is_none() {
        return out;
    }
    for (name, facts) in metas {
        let (key, _) = split_name(&name);
        let path = format!("{}:{}", rel(Stream::Metas), shown(&name));
        let captions = match facts {
            MetaFacts::Invalid(e) => {
                out.problems.push(Problem {
                    path,
                    message: format!("not valid JSON: {e}"),
                });
                continue;
            }
            MetaFacts::Parsed {
                span_uuid,
                captions,
                trainer,
            } => {
                if span_uuid.as_deref() != Some(key) {
                    out.problems.push(Problem {
                        path: path.clone(),
                        message: format!("span_uuid is not the key {}", shown(key)),
                    });
                }
                for p in trainer.iter().flat_map(|t| &t.problems) {
                    out.problems.push(Problem {
                        path: path.clone(),
                        message: p.clone(),
                    });
                }
                (captions, trainer)
            }
        };
        let (captions, trainer) = captions;
        out.layouts.insert(match trainer {
            Some(_) => OutputLayout::CosmosPredict25,
            None => OutputLayout::Reference,
        });
        let Some(pickle) = pickles.get(key) else {
            continue;
        };
        let ppath = format!(
            "{}:{}",
            rel(Stream::T5Xxl),
            crate::layout::member_name(&shown(key), Stream::T5Xxl)
        );
        let layout_problems = match (&trainer, &pickle.dicts) {
            (Some(t), Some(dicts)) => check_dicts(dicts, &t.captioned),
            // `[]` (a clip with no windows) decodes as a list of arrays, yet is just as much
            // the empty list of dicts
            (Some(t), None) if matches!(&pickle.arrays, Ok(a) if a.is_empty()) => {
                check_dicts(&[], &t.captioned)
            }
            (Some(_), None) if pickle.arrays.is_ok() => vec![
                "a list of arrays, but its .json has t2w_windows: one dict per window expected"
                    .into(),
            ],
            (None, Some(_)) => vec![
                "a list of dicts, but its .json has no t2w_windows: the layouts are mixed".into(),
            ],
            _ => vec![],
        };
        for message in layout_problems {
            out.problems.push(Problem {
                path: ppath.clone(),
                message,
            });
        }
        match &pickle.arrays {
            Err(e) => out.problems.push(Problem {
                path: ppath,
                message: format!("does not decode: {e}"),
            }),
            Ok(arrays) => {
                if arrays.len() != captions.len() {
                    out.problems.push(Problem {
                        path: ppath.clone(),
                        message: format!(
                            "{} arrays for {} captioned windows",
                            arrays.len(),
                            captions.len()
                        ),
                    });
                }
                for (w, &(rows, d, finite)) in arrays.iter().enumerate() {
                    if rows == 0 {
                        out.problems.push(Problem {
                            path: format!("{ppath}[{w}]"),
                            message: "an embedding with no rows".into(),
                        });
                    }
                    out.d_model.insert(d);
                    if !finite {
                        out.problems.push(Problem {
                            path: format!("{ppath}[{w}]"),
                            message: "holds NaN or infinite values".into(),
                        });
                    }
                    if opts.sample_windows > 0 {
                        if let Some(c) = captions.get(w) {
                            out.windows.push(StoredWindow {
                                bin: bin.to_string(),
                                tar: tar.to_string(),
                                key: key.to_string(),
                                window: w,
                                caption: c.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// A `.idx` beside the tar, and the stream's `shardindex.json` entry, must match the tar.
fn check_indexes(
    storage: &Storage,
    root: &Location,
    layout: &Layout,
    wids_indexes: &WidsIndexes,
    rel: &str,
    r: &TarRead,
    problems: &mut Vec<Problem>,
) {
    if r.error.is_some() {
        return;
    }
    let idx = crate::layout::idx_path(rel);
    if layout.others.contains_key(&idx) {
        match storage.read(&root.join(&idx)) {
            Ok(text) if text.as_ref() == r.dali.to_text().as_bytes() => {}
            Ok(_) => problems.push(Problem {
                path: idx,
                message: "does not match its tar (DALI index)".into(),
            }),
            Err(e) => problems.push(Problem {
                path: idx,
                message: format!("cannot be read: {}", e.message),
            }),
        }
    }
    let (dir, tar) = rel.rsplit_once("/part_").map_or((rel, ""), |(d, t)| (d, t));
    let wids = crate::layout::shardindex_in(dir);
    if !layout.others.contains_key(&wids) {
        return;
    }
    let url = format!("part_{tar}");
    // an index that cannot be read or parsed is a problem (named once: verify drops
    // repeats), not a silent pass, nor "no entry" for each of its tars
    let problem = wids_indexes.with(storage, root, &wids, |index| match index {
        Err(message) => Some(message.clone()),
        Ok(entries) => match entries.get(&url) {
            None => Some(format!("has no entry for {url}")),
            Some(&(nsamples, filesize))
                if nsamples != Some(r.dali.samples() as u64) || filesize != Some(r.bytes) =>
            {
                let shown = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
                Some(format!(
                    "{url}: nsamples {} and filesize {} do not match the tar ({} samples, {} bytes)",
                    shown(nsamples),
                    shown(filesize),
                    r.dali.samples(),
                    r.bytes
                ))
            }
            Some(_) => None,
        },
    });
    if let Some(message) = problem {
        problems.push(Problem {
            path: wids,
            message,
        });
    }
}
