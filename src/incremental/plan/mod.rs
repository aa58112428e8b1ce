//! From the new version's plan to what an incremental run does: which member tars are copied
//! from the earlier output, which are written, which embeddings are reused (`reshard`); or
//! which clips are new and where their tars go (`--append`). Runs on worker 0 in the plan
//! gate, before any clip is emitted.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::journal::Journal;
use crate::layout::Stream;
use crate::record::{Copied, CopiedTar, EmbeddingRef, PlanSummary, PlannedClip, TarDone, TarId};
use crate::spec::group_tars;
use crate::storage::{Location, Storage};

use super::base::Base;
use super::{ChangeComputation, ClipFacts, Grouping, TripleKey};

/// What an incremental run starts from.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `reshard`: a new version from an earlier one.
    Reshard {
        /// The earlier version.
        base: std::sync::Arc<Base>,
        /// Threads of the change computation.
        workers: usize,
    },
    /// `shard --append`: new clips added to the same version.
    Append {
        /// The output as it is.
        base: std::sync::Arc<Base>,
    },
}

impl Mode {
    /// The earlier output.
    pub fn base(&self) -> &Base {
        match self {
            Mode::Reshard { base, .. } | Mode::Append { base } => base,
        }
    }
}

fn triple_key(t: &TarId) -> TripleKey {
    (t.bin.clone(), t.part, t.tar)
}

/// Where the new version's tars go and what the re-shard must do.
pub struct ReshardTarget<'a> {
    /// The output's storage.
    pub output: &'a Storage,
    /// `<output>/<new version>`.
    pub version_dir: &'a Location,
    /// The new version's journal.
    pub journal: &'a Journal,
    /// Grouping options.
    pub grouping: Grouping,
    /// Tars carry a DALI index beside them, copied with them.
    pub dali_index: bool,
    /// What finds the changes from the earlier version.
    pub changes: ChangeComputation,
}

/// Re-shard planning: copies every member tar whose contents are unchanged, records the
/// triples copied whole in `done`, and returns the clips still to write — each marked with
/// the members copied for its triple and, per window, the earlier embedding to reuse.
/// Triples in `skip` (completed by an interrupted run of this job) are left alone.
pub fn reshard(
    planned: Vec<PlannedClip>,
    base: &Base,
    workers: usize,
    target: &ReshardTarget,
    skip: &HashSet<TarId>,
    done: &mut Vec<TarDone>,
) -> Result<Vec<PlannedClip>, String> {
    let facts: Vec<(String, ClipFacts)> = planned
        .iter()
        .map(|c| {
            (
                c.tar.bin.clone(),
                ClipFacts {
                    seq: c.meta.seq,
                    num_bytes: c.meta.num_bytes,
                    key: c.meta.span_uuid.clone(),
                    clip_path: c.meta.clip_path.clone(),
                    clip_size: c.meta.clip_size.unwrap_or(0),
                    clip_stamp: c.meta.clip_stamp,
                    meta_hash: c.meta.meta_hash,
                    caption_hashes: c.meta.caption_hashes.clone(),
                },
            )
        })
        .collect();
    // the planner already dropped small last tars: grouping what is left drops nothing more
    let grouping = Grouping {
        drop_below: 0,
        ..target.grouping
    };
    let ch = (target.changes)(&base.old_version(), &facts, grouping, workers)
        .map_err(|e| e.to_string())?;
    drop(facts);

    // the assignment derived by the change computation is the planner's
    let mut plan_triples: BTreeMap<TripleKey, (TarId, Vec<String>)> = BTreeMap::new();
    for c in &planned {
        plan_triples
            .entry(triple_key(&c.tar))
            .or_insert_with(|| (c.tar.clone(), vec![]))
            .1
            .push(c.meta.span_uuid.clone());
    }
    let agree = plan_triples.len() == ch.triples.len()
        && plan_triples
            .iter()
            .all(|(k, (_, keys))| ch.triples.get(k).is_some_and(|(k2, _)| k2 == keys));
    if !agree {
        return Err(
            "internal error: the change computation's tar assignment differs from the plan's"
                .into(),
        );
    }

    // copy what is unchanged (not what an interrupted run of this job already completed)
    let live = |k: &TripleKey| !skip.contains(&plan_triples[k].0);
    let copies: Vec<(TripleKey, Stream)> = ch
        .copy
        .iter()
        .map(|(b, stream, p, t)| ((b.clone(), *p, *t), *stream))
        .filter(|(k, _)| live(k))
        .collect();
    // the sizes are in the earlier version's records (whose tars loading checked): no HEAD
    let size = |k: &TripleKey, stream: Stream| {
        base.records[k].contents.as_ref().expect("checked").sizes[stream]
    };
    let mut pairs: Vec<(Location, Location, Option<u64>)> = copies
        .iter()
        .map(|(k, kind)| {
            let to = target
                .journal
                .names()
                .tar_path(target.version_dir, &plan_triples[k].0, *kind);
            (base.tar_location(k, *kind), to, Some(size(k, *kind)))
        })
        .collect();
    if target.dali_index {
        let idx = crate::layout::idx_location;
        let more: Vec<(Location, Location, Option<u64>)> = pairs
            .iter()
            .map(|(f, t, _)| Ok((idx(f)?, idx(t)?, None)))
            .collect::<Result<_, String>>()?;
        pairs.extend(more);
    }
    for r in target.output.copy_many(&pairs) {
        r.map_err(|e| e.to_string())?;
    }
    let mut copied: HashMap<TripleKey, Copied> = HashMap::new();
    for (k, kind) in &copies {
        copied.entry(k.clone()).or_default()[*kind] = Some(CopiedTar {
            size: size(k, *kind),
            // the checksum travels with the copy (a triple copied whole keeps the record)
            sha256: base.records[k].sha256[*kind].clone(),
        });
    }
    tracing::info!(
        "reshard: {} of {} member tars unchanged (copied), {} captions to embed",
        copies.len(),
        Stream::ALL.len() * ch.triples.len(),
        ch.new_captions.len()
    );

    // triples copied whole are complete now
    let mut whole = HashSet::new();
    for (k, c) in &copied {
        if c.values().all(Option::is_some) {
            let mut d = base.records[k].clone();
            d.tar = plan_triples[k].0.clone();
            d.windows_reused = d
                .contents
                .as_ref()
                .map_or(0, |c| c.captions.iter().map(|w| w.len() as u64).sum());
            d.windows_embedded = 0;
            d.tokens_embedded = 0;
            d.files_copied = Stream::ALL.len() as u8;
            d.resumed = false;
            d.kept = false;
            d.rejects.clear();
            target.journal.record_done(&d).map_err(|e| e.to_string())?;
            done.push(d);
            whole.insert(k.clone());
        }
    }

    let index = base.embeddings();
    // positions resolve against the records in order; each t5_xxl tar's location once
    let records: Vec<(String, &TarDone)> = base
        .records
        .iter()
        .map(|(k, d)| (base.tar_location(k, Stream::T5Xxl).to_string(), d))
        .collect();
    let resolve = |pos: super::base::EmbeddingPos| {
        let (tar, d) = &records[pos.record as usize];
        EmbeddingRef {
            tar: tar.clone(),
            key: d.contents.as_ref().expect("checked on load").keys[pos.sample as usize].clone(),
            window: pos.window,
        }
    };
    Ok(planned
        .into_iter()
        .filter(|c| {
            let k = triple_key(&c.tar);
            !whole.contains(&k) && !skip.contains(&c.tar)
        })
        .map(|mut c| {
            c.copied = copied.get(&triple_key(&c.tar)).cloned().unwrap_or_default();
            if c.needs_embeddings() {
                c.reuse = c
                    .meta
                    .caption_hashes
                    .iter()
                    .map(|h| {
                        (!ch.new_captions.contains(h))
                            .then(|| index.get(h).map(|p| resolve(*p)))
                            .flatten()
                    })
                    .collect();
            }
            c
        })
        .collect())
}

/// Append planning: keeps every triple already in the output (recorded in `done` as kept),
/// and groups the clips whose keys it does not hold into new parts after each bin's last
/// one. Updates `summary` (bins with old and new tars, clips planned) and returns the new
/// clips.
pub fn append(
    planned: Vec<PlannedClip>,
    summary: &mut PlanSummary,
    base: &Base,
    grouping: Grouping,
    done: &mut Vec<TarDone>,
) -> Vec<PlannedClip> {
    let existing = base.keys();
    let mut order: Vec<String> = summary.bins.iter().map(|(b, _)| b.clone()).collect();
    for (bin, _, _) in base.records.keys() {
        if !order.contains(bin) {
            order.push(bin.clone());
        }
    }
    let mut new_by_bin: HashMap<String, Vec<PlannedClip>> = HashMap::new();
    let mut already: HashSet<String> = HashSet::new();
    for c in planned {
        if existing.contains(c.meta.span_uuid.as_str()) {
            already.insert(c.meta.span_uuid.clone());
        } else {
            new_by_bin.entry(c.tar.bin.clone()).or_default().push(c);
        }
    }
    let mut bins = Vec::new();
    let mut out = Vec::new();
    for (bin_order, bin) in order.iter().enumerate() {
        let mut tars: Vec<TarId> = Vec::new();
        for ((b, part, tar), d) in base.records.range((bin.clone(), 0, 0)..) {
            if b != bin {
                break;
            }
            let id = TarId {
                bin_order: bin_order as u32,
                bin: bin.clone(),
                part: *part,
                tar: *tar,
            };
            let mut d = d.clone();
            d.tar = id.clone();
            d.kept = true;
            d.resumed = false;
            d.files_copied = 0;
            // nothing of a kept tar is embedded by this run
            d.windows_embedded = 0;
            d.tokens_embedded = 0;
            d.rejects.clear();
            done.push(d);
            tars.push(id);
        }
        let first_part = tars.iter().map(|t| t.part + 1).max().unwrap_or(0);
        let clips = new_by_bin.remove(bin).unwrap_or_default();
        let sizes: Vec<u64> = clips.iter().map(|c| c.meta.num_bytes).collect();
        let mut clips = clips.into_iter();
        for g in group_tars(
            &sizes,
            grouping.target_tar_bytes,
            grouping.max_tars_per_part,
        ) {
            let id = TarId {
                bin_order: bin_order as u32,
                bin: bin.clone(),
                part: first_part + g.part,
                tar: g.tar,
            };
            let len = g.members.len() as u32;
            for index in 0..len {
                let mut c = clips.next().expect("groups cover every clip");
                c.rank = out.len() as u64;
                c.tar = id.clone();
                c.index = index;
                c.tar_len = len;
                out.push(c);
            }
            tars.push(id);
        }
        if !tars.is_empty() {
            bins.push((bin.clone(), tars));
        }
    }
    let mut unlisted: Vec<&str> = existing
        .iter()
        .copied()
        .filter(|k| !already.contains(*k))
        .collect();
    if !unlisted.is_empty() {
        unlisted.sort_unstable();
        tracing::warn!(
            "append: {} clips in the output are not planned by this listing (metadata removed, now rejected, invalid or in no bin), e.g. {}: their tars are kept as they are, and they are not counted as written (reshard into a new version to leave them out)",
            unlisted.len(),
            unlisted[..unlisted.len().min(5)].join(", ")
        );
    }
    summary.kept_unlisted = unlisted.len() as u64;
    tracing::info!(
        "append: {} clips already in the output, {} new in {} new tars",
        already.len(),
        out.len(),
        {
            let set: HashSet<&TarId> = out.iter().map(|c| &c.tar).collect();
            set.len()
        }
    );
    summary.bins = bins;
    summary.planned = out.len() as u64;
    out
}

#[cfg(test)]
mod tests;
