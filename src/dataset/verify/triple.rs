//! The checks of one tar triple.

use std::collections::{BTreeMap, BTreeSet};

use super::{Problem, StoredWindow, TripleResult, VerifyOptions};
use crate::dataset::index::{idx_path, split_name};
use crate::dataset::layout::{Layout, STREAMS};
use crate::dataset::read::{read_tar, TarRead};
use crate::formats::npy_pickle::read_array_list;
use crate::formats::pyjson::{self, PyValue};
use crate::ops::write_tar::KINDS;
use crate::storage::{Location, Storage};

pub(crate) fn check_triple(
    storage: &Storage,
    root: &Location,
    layout: &Layout,
    bin: &str,
    tar: &str,
    sizes: &[Option<u64>; 3],
    opts: &VerifyOptions,
) -> TripleResult {
    let mut out = TripleResult {
        problems: vec![],
        samples: 0,
        bytes: 0,
        d_model: BTreeSet::new(),
        windows: vec![],
    };
    let rel = |k: usize| format!("{bin}/{}/{tar}", STREAMS[k]);
    let mut reads: Vec<Option<TarRead>> = Vec::new();
    for (k, size) in sizes.iter().enumerate() {
        if size.is_none() {
            out.problems.push(Problem {
                path: rel(k),
                message: format!("missing (the other streams have {tar})"),
            });
            reads.push(None);
            continue;
        }
        let r = read_tar(storage, &Layout::tar(root, bin, k, tar), k > 0);
        out.bytes += r.bytes;
        if let Some(e) = &r.error {
            out.problems.push(Problem {
                path: rel(k),
                message: format!("does not read to the end: {e}"),
            });
        }
        check_indexes(storage, root, layout, &rel(k), &r, &mut out.problems);
        reads.push(Some(r));
    }
    // keys per stream, in order
    let mut keys: Vec<Option<Vec<String>>> = vec![None; 3];
    for (k, r) in reads.iter().enumerate() {
        let Some(r) = r else { continue };
        let mut seen = BTreeSet::new();
        let mut ks = Vec::new();
        for m in &r.members {
            let (key, ext) = split_name(&m.name);
            if ext != KINDS[k].1 {
                out.problems.push(Problem {
                    path: format!("{}:{}", rel(k), m.name),
                    message: format!("a {} tar member should end in .{}", STREAMS[k], KINDS[k].1),
                });
            }
            if !seen.insert(key.to_string()) {
                out.problems.push(Problem {
                    path: format!("{}:{}", rel(k), m.name),
                    message: format!("key {key} appears twice"),
                });
            }
            ks.push(key.to_string());
        }
        keys[k] = Some(ks);
    }
    let present: Vec<&Vec<String>> = keys.iter().flatten().collect();
    if let Some(first) = present.first() {
        out.samples = first.len() as u64;
        for (k, ks) in keys.iter().enumerate() {
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
                        ks.get(at).map_or("end", |s| s.as_str()),
                        first.get(at).map_or("end", |s| s.as_str())
                    ),
                });
            }
        }
    }
    // members: json ↔ pickle
    let (Some(Some(t5)), Some(Some(metas))) = (reads.get(1), reads.get(2)) else {
        return out;
    };
    let pickles: BTreeMap<&str, &[u8]> = t5
        .members
        .iter()
        .filter_map(|m| Some((split_name(&m.name).0, m.data.as_deref()?)))
        .collect();
    let field = format!("{}_caption", opts.captioning_algorithm);
    for m in &metas.members {
        let (key, _) = split_name(&m.name);
        let path = format!("{}:{}", rel(2), m.name);
        let Some(data) = &m.data else { continue };
        let json = match pyjson::parse(data) {
            Ok(v) => v,
            Err(e) => {
                out.problems.push(Problem {
                    path,
                    message: format!("not valid JSON: {e}"),
                });
                continue;
            }
        };
        if json.get("span_uuid").and_then(|u| u.as_str()) != Some(key) {
            out.problems.push(Problem {
                path: path.clone(),
                message: format!("span_uuid is not the key {key}"),
            });
        }
        let captions: Vec<String> = json
            .get("windows")
            .and_then(|w| w.as_array())
            .map(|ws| {
                ws.iter()
                    .filter_map(|w| match w.get(&field) {
                        Some(PyValue::Str(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some(pickle) = pickles.get(key) else {
            continue;
        };
        let ppath = format!("{}:{key}.pickle", rel(1));
        match read_array_list(pickle) {
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
                for (w, a) in arrays.iter().enumerate() {
                    if a.shape.0 == 0 {
                        out.problems.push(Problem {
                            path: format!("{ppath}[{w}]"),
                            message: "an embedding with no rows".into(),
                        });
                    }
                    out.d_model.insert(a.shape.1);
                    if a.data.iter().any(|x| !x.is_finite()) {
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
    rel: &str,
    r: &TarRead,
    problems: &mut Vec<Problem>,
) {
    if r.error.is_some() {
        return;
    }
    let idx = idx_path(rel);
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
    let wids = format!("{dir}/shardindex.json");
    if !layout.others.contains_key(&wids) {
        return;
    }
    let url = format!("part_{tar}");
    let Ok(bytes) = storage.read(&root.join(&wids)) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let entry = v["shardlist"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["url"] == url.as_str()));
    match entry {
        None => problems.push(Problem {
            path: wids,
            message: format!("has no entry for {url}"),
        }),
        Some(e) => {
            if e["nsamples"].as_u64() != Some(r.dali.samples() as u64)
                || e["filesize"].as_u64() != Some(r.bytes)
            {
                problems.push(Problem {
                    path: wids,
                    message: format!(
                        "{url}: nsamples {} and filesize {} do not match the tar ({} samples, {} bytes)",
                        e["nsamples"], e["filesize"], r.dali.samples(), r.bytes
                    ),
                });
            }
        }
    }
}
