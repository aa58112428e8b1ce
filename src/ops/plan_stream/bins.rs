//! The per-bin planners: a worker owns some bins, sees their clips in listing order and closes
//! each tar as soon as the next clip does not fit (SPEC §4); only a bin's last tar waits for
//! the end of the input (`--drop-small-shards` may drop it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::JobFailure;
use crate::hash::stable_hash;
use crate::job::JobContext;

use crate::layout::TarId;
use crate::record::{ClipMeta, PlannedClip, TarDone};
use crate::spec::TarGrouper;

use super::{first_open, PlanPart, Planned, Release, StreamPlan};

/// The key of a tar triple regardless of its bin's rank: its path.
pub type TarPath = (String, u32, u32);

/// What a re-run keeps: the completed triples of the interrupted run, by path, and how to
/// tell whether a triple was written from the clips the plan puts in it now.
#[derive(Clone)]
pub struct Completed {
    /// The journal's completion records.
    pub records: Arc<HashMap<TarPath, TarDone>>,
    /// Whether a record's clips are these.
    pub unchanged: fn(&TarDone, &[&ClipMeta]) -> bool,
}

/// Grouping options of the planners.
#[derive(Clone, Debug)]
pub struct Grouping {
    /// Target tar size in bytes (metadata `num_bytes` summed).
    pub target_tar_bytes: u64,
    /// Tars per part.
    pub max_tars_per_part: u32,
    /// A bin's last tar with fewer clips than this is dropped (0: never).
    pub drop_below: u32,
    /// mtime of every tar member.
    pub mtime: u64,
}

// clips stay boxed from `read_meta` to the planned clip (`PlannedClip::meta`): moved, not copied
#[allow(clippy::vec_box)]
struct Bin {
    rank: u32,
    grouper: TarGrouper,
    open: Vec<Box<ClipMeta>>,
    tars: Vec<TarId>,
}

/// One worker's bins.
pub struct BinPlanner {
    grouping: Grouping,
    completed: Option<Completed>,
    ranks: HashMap<String, u32>,
    bins: HashMap<String, Bin>,
    /// Counts so far (planned, dropped small, triples kept from the interrupted run).
    pub part: PlanPart,
}

impl BinPlanner {
    /// Planners with these options; `completed` on `--resume`.
    pub fn new(grouping: Grouping, completed: Option<Completed>) -> Self {
        BinPlanner {
            grouping,
            completed,
            ranks: HashMap::new(),
            bins: HashMap::new(),
            part: PlanPart::default(),
        }
    }

    /// The plan starts: clips get `mtime`; on `--resume`, the completed triples to keep.
    pub fn start(&mut self, mtime: u64, completed: Option<Completed>) {
        self.grouping.mtime = mtime;
        self.completed = completed;
    }

    /// The registry ranked `bin`.
    pub fn rank(&mut self, bin: String, rank: u32) {
        self.ranks.insert(bin, rank);
    }

    /// The next clip of one of this worker's bins, in listing order (its bin ranked); the
    /// clips of the tar it closed, if any, ready to encode.
    ///
    /// # Panics
    /// If the clip has no bin, or its bin is not ranked.
    pub fn push(&mut self, clip: Box<ClipMeta>) -> Vec<PlannedClip> {
        let name = clip.bin.clone().expect("planned clips have a bin");
        let (g, ranks) = (&self.grouping, &self.ranks);
        let bin = self.bins.entry(name.clone()).or_insert_with(|| Bin {
            rank: *ranks.get(&name).expect("bins are ranked before planned"),
            grouper: TarGrouper::new(g.target_tar_bytes, g.max_tars_per_part, g.drop_below),
            open: Vec::new(),
            tars: Vec::new(),
        });
        let closed = bin.grouper.push(clip.num_bytes).map(|group| {
            debug_assert_eq!(group.members.len(), bin.open.len());
            let tar = TarId {
                bin_order: bin.rank,
                bin: name,
                part: group.part,
                tar: group.tar,
            };
            bin.tars.push(tar.clone());
            (tar, std::mem::take(&mut bin.open))
        });
        bin.open.push(clip);
        match closed {
            Some((tar, members)) => close(
                tar,
                members,
                &self.grouping,
                &self.completed,
                &mut self.part,
            ),
            None => Vec::new(),
        }
    }

    /// The input is complete: every bin's last tar, and this worker's counts and tars.
    pub fn finish(&mut self) -> Vec<PlannedClip> {
        let mut out = Vec::new();
        let mut bins: Vec<(String, Bin)> = self.bins.drain().collect();
        bins.sort_by_key(|(_, b)| b.rank);
        for (name, mut bin) in bins {
            let open = std::mem::take(&mut bin.open);
            match bin.grouper.finish() {
                Some(group) => {
                    let tar = TarId {
                        bin_order: bin.rank,
                        bin: name.clone(),
                        part: group.part,
                        tar: group.tar,
                    };
                    bin.tars.push(tar.clone());
                    out.extend(close(
                        tar,
                        open,
                        &self.grouping,
                        &self.completed,
                        &mut self.part,
                    ));
                }
                None => self.part.summary.dropped_small_tar += open.len() as u64,
            }
            // a bin left without a tar is omitted entirely (SPEC §4)
            if !bin.tars.is_empty() {
                self.part.summary.bins.push((name, bin.tars));
            }
        }
        out
    }
}

#[allow(clippy::vec_box)]
/// A closed tar: its clips to encode, or none when the interrupted run completed it from the
/// same clips (its record then goes to the report).
fn close(
    tar: TarId,
    members: Vec<Box<ClipMeta>>,
    g: &Grouping,
    completed: &Option<Completed>,
    part: &mut PlanPart,
) -> Vec<PlannedClip> {
    part.summary.planned += members.len() as u64;
    if let Some(c) = completed {
        let key = (tar.bin.clone(), tar.part, tar.tar);
        if let Some(d) = c.records.get(&key) {
            let metas: Vec<&ClipMeta> = members.iter().map(|m| &**m).collect();
            if (c.unchanged)(d, &metas) {
                let mut d = d.clone();
                d.tar = tar;
                d.resumed = true;
                part.resumed.push(d);
                return Vec::new();
            }
            tracing::warn!(
                "{}/{}: a clip changed since this tar triple was written; writing it again",
                tar.bin,
                tar.rel_path()
            );
        }
    }
    let len = members.len() as u32;
    members
        .into_iter()
        .enumerate()
        .map(|(index, meta)| PlannedClip {
            rank: meta.seq,
            tar: tar.clone(),
            index: index as u32,
            tar_len: len,
            meta,
            mtime: g.mtime,
            gone: None,
            copied: Default::default(),
            reuse: Vec::new(),
        })
        .collect()
}

/// The bin planners' step, as an operator: see [`BinPlanner`].
// clips stay boxed from `read_meta` to the planned clip (`PlannedClip::meta`): moved, not copied
#[allow(clippy::vec_box, clippy::borrowed_box)]
pub(super) fn bins_op<'scope>(
    clips: Stream<'scope, u64, Vec<Box<ClipMeta>>>,
    releases: Stream<'scope, u64, Vec<Release>>,
    plan: &StreamPlan,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<Planned>> {
    let ctx = ctx.clone();
    let plan = plan.clone();
    let route = |c: &Box<ClipMeta>| stable_hash(c.bin.as_deref().unwrap_or_default().as_bytes());
    clips.binary_frontier(
        releases,
        Exchange::new(route),
        Pipeline,
        "PlanBins",
        move |cap, _info| {
            let mut planner = BinPlanner::new(plan.grouping.clone(), None);
            let mut pages: BTreeMap<u64, Vec<Box<ClipMeta>>> = BTreeMap::new();
            let mut ranks: BTreeMap<u64, Vec<Release>> = BTreeMap::new();
            let mut held = Some(cap);
            let mut refused: Option<String> = None;
            move |(clips, f1), (releases, f2), output| {
                clips.for_each(|c, data| {
                    pages
                        .entry(*c.least().expect("a page"))
                        .or_default()
                        .append(data)
                });
                releases.for_each(|c, data| {
                    ranks
                        .entry(*c.least().expect("a page"))
                        .or_default()
                        .append(data)
                });
                let Some(h) = held.as_mut() else {
                    pages.clear();
                    return;
                };
                let open = first_open(f1).min(first_open(f2));
                while let Some(entry) = ranks.first_entry() {
                    if *entry.key() >= open {
                        break;
                    }
                    for r in entry.remove() {
                        match r {
                            Release::Start { mtime, resume } => {
                                let completed = resume.then(|| Completed {
                                    records: completed_triples(&plan, &ctx),
                                    unchanged: plan.unchanged,
                                });
                                planner.start(mtime, completed);
                            }
                            Release::Rank(bin, rank) => planner.rank(bin, rank),
                            Release::Refused(message) => {
                                // stop this process's encoders and writers too
                                ctx.failure.fail(JobFailure::Refused(message.clone()));
                                refused = Some(message);
                            }
                        }
                    }
                }
                while let Some(entry) = pages.first_entry() {
                    if *entry.key() >= open {
                        break;
                    }
                    let t = *entry.key();
                    let mut page = entry.remove();
                    if refused.is_some() {
                        continue;
                    }
                    page.sort_by_key(|c| c.seq);
                    let out: Vec<PlannedClip> = {
                        let _t = ctx.clock.time("plan_bins");
                        page.into_iter().flat_map(|c| planner.push(c)).collect()
                    };
                    if !out.is_empty() {
                        ctx.progress
                            .planned
                            .fetch_add(out.len() as u64, Ordering::Relaxed);
                        let at = h.delayed(&t);
                        output
                            .session(&at)
                            .give_iterator(out.into_iter().map(Planned::Clip));
                    }
                }
                if open == u64::MAX {
                    let out = if refused.is_some() {
                        Vec::new()
                    } else {
                        planner.finish()
                    };
                    ctx.progress
                        .planned
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    let part = std::mem::take(&mut planner.part);
                    {
                        let mut session = output.session(&*h);
                        session.give_iterator(out.into_iter().map(Planned::Clip));
                        session.give(Planned::Part(part));
                    }
                    held = None;
                } else if open > *h.time() {
                    h.downgrade(&open);
                }
            }
        },
    )
}

/// The interrupted run's completed triples, read once per process (a failure to read them
/// fails the job: nothing is then kept).
fn completed_triples(plan: &StreamPlan, ctx: &JobContext) -> Arc<HashMap<TarPath, TarDone>> {
    plan.completed
        .get_or_init(|| match plan.journal.load_done() {
            Ok(records) => Arc::new(
                records
                    .into_iter()
                    .map(|d| ((d.tar.bin.clone(), d.tar.part, d.tar.tar), d))
                    .collect(),
            ),
            Err(e) => {
                let message = format!("the job journal could not be read: {e}");
                tracing::error!("{message}");
                ctx.failure.fail(JobFailure::Plan(message));
                Arc::default()
            }
        })
        .clone()
}
