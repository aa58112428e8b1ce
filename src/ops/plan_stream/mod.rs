//! `plan_stream`: plans the job as the listing goes, so that the first tars are encoded and
//! written while later pages are still listed and read, and no step holds the whole plan.
//!
//! The plan is the one of [`Planner::plan`](crate::ops::assign_tars::Planner::plan), made in
//! steps that each need only what comes before a clip in listing order (pages arrive at
//! timestamp = page number, so a page is complete when the frontier passes it):
//!
//! 1. **keys** ([`KeyFilter`], exchanged by `span_uuid`): counts every outcome, drops semantic
//!    duplicates, clips without a bin and reused `span_uuid`s (the first in listing order
//!    wins). Each worker holds only the keys it owns.
//! 2. **registry** ([`BinRegistry`], worker 0): ranks bins by their first clip (`bin_order`)
//!    once every earlier page is complete, and holds the plan until a caption is seen (a
//!    misspelt caption field is refused before anything is written).
//! 3. **bins** ([`BinPlanner`], exchanged by bin): groups each bin's clips into tars and emits
//!    a tar's clips as soon as it is closed; only a bin's last tar waits for the end.
//!
//! On `--resume`, a closed tar whose completion record was written from the same clips is
//! kept (its record goes to the report) and every other tar is written; the journal needs no
//! record of the whole plan. The counts, rejects and tars of every step are gathered on worker
//! 0 at the end, for the summaries and the report.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Map, Partition};
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;
use timely::progress::frontier::MutableAntichain;

use crate::error::JobFailure;
use crate::hash::stable_hash;
use crate::job::{JobContext, Milestone};
use crate::journal::{JobFingerprint, Journal};
use crate::record::{ClipMeta, MetaOutcome, PlanSummary, PlannedClip, TarDone};

mod bins;
mod keys;
mod registry;

pub use bins::{BinPlanner, Completed, Grouping, TarPath};
pub use keys::{Admitted, KeyFilter};
pub use registry::{BinRegistry, Verdict};

/// Pages the registry may hold the plan while no caption has been seen: past them, a plan
/// whose windows lack captions and that has none is refused. Below the listing's look-ahead
/// ([`crate::ops::list::AHEAD_PAGES`]), so that the listing never waits for the hold.
pub const HOLD_PAGES: u64 = 4;

/// One step's share of the plan's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanPart {
    /// Counts, rejects, and (from the bin planners) tars.
    pub summary: PlanSummary,
    /// The seq of `summary.failed`: the first in listing order is reported.
    pub failed_seq: Option<u64>,
    /// Triples of an interrupted run kept as they are.
    pub resumed: Vec<TarDone>,
}

impl PlanPart {
    /// Adds `other` to this part.
    pub fn merge(&mut self, other: PlanPart) {
        let (s, o) = (&mut self.summary, other.summary);
        s.listed += o.listed;
        s.invalid += o.invalid;
        s.dropped_no_bin += o.dropped_no_bin;
        s.rejects.extend(o.rejects);
        for (k, v) in o.warnings {
            *s.warnings.entry(k).or_default() += v;
        }
        s.bins.extend(o.bins);
        s.planned += o.planned;
        s.removed_semantic_dedup += o.removed_semantic_dedup;
        s.dropped_small_tar += o.dropped_small_tar;
        if let Some(seq) = other.failed_seq {
            if self.failed_seq.is_none_or(|f| seq < f) {
                self.failed_seq = Some(seq);
                s.failed = o.failed;
            }
        }
        self.resumed.extend(other.resumed);
    }

    /// The whole plan's summary, once every part is merged: rejects in listing order, bins
    /// in order of first appearance.
    pub fn into_summary(self) -> (PlanSummary, Vec<TarDone>) {
        let mut s = self.summary;
        s.rejects
            .sort_by(|a, b| a.meta.as_bytes().cmp(b.meta.as_bytes()));
        s.bins
            .sort_by_key(|(_, tars)| tars.first().map(|t| t.bin_order));
        (s, self.resumed)
    }
}

/// Position in the listing; rejects (which carry none) sort last, then by their path.
pub(crate) fn seq_of(o: &MetaOutcome) -> u64 {
    match o {
        MetaOutcome::Clip(c) => c.seq,
        MetaOutcome::Invalid { seq } | MetaOutcome::Failed { seq, .. } => *seq,
        MetaOutcome::Reject(_) => u64::MAX,
    }
}

/// The streaming plan's options.
#[derive(Clone)]
pub struct StreamPlan {
    /// Tar grouping, and the mtime on process 0 (the job's, or the interrupted run's on
    /// `--resume`); every process stamps the clips with process 0's.
    pub grouping: Grouping,
    /// Sample keys the semantic-dedup tables mark as duplicates.
    pub dedup: Option<Arc<HashSet<String>>>,
    /// The caption field when a plan without any caption must be refused.
    pub require_captions: Option<String>,
    /// The output's journal.
    pub journal: Journal,
    /// Process 0 only: what the journal needs before the first tar.
    pub start: Option<Start>,
    /// This process's copy of the interrupted run's completed triples, read once when a
    /// resumed plan starts.
    pub completed: Arc<OnceLock<Arc<HashMap<TarPath, TarDone>>>>,
    /// Whether a completed triple holds these clips as they are now.
    pub unchanged: fn(&TarDone, &[&ClipMeta]) -> bool,
}

/// What the journal needs before the first tar (decided on process 0).
#[derive(Clone)]
pub enum Start {
    /// A fresh run: record the job.
    Record(JobFingerprint),
    /// `--resume`: keep the completed triples whose clips are unchanged.
    Resume,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Keyed {
    Clip(Box<ClipMeta>),
    Bin(String, u64),
    Captions(u64, u64),
    Part(PlanPart),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Release {
    /// The plan goes on, with process 0's mtime, resuming or not.
    Start {
        mtime: u64,
        resume: bool,
    },
    Rank(String, u32),
    Refused(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Planned {
    Clip(PlannedClip),
    Part(PlanPart),
}

/// The least time not yet complete (`u64::MAX` when all are).
fn first_open(f: &MutableAntichain<u64>) -> u64 {
    f.frontier().iter().copied().min().unwrap_or(u64::MAX)
}

/// The `plan_stream` operator.
pub trait PlanStream<'scope> {
    /// Plans the outcomes of `read_meta` as they come (see the module docs); on worker 0, puts
    /// the summary in `summary` and the kept triples of an interrupted run in `done` once the
    /// input is complete.
    fn plan_stream(
        self,
        plan: StreamPlan,
        summary: Rc<RefCell<Option<PlanSummary>>>,
        done: Rc<RefCell<Vec<TarDone>>>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<PlannedClip>>;
}

impl<'scope> PlanStream<'scope> for Stream<'scope, u64, Vec<MetaOutcome>> {
    fn plan_stream(
        self,
        plan: StreamPlan,
        summary: Rc<RefCell<Option<PlanSummary>>>,
        done: Rc<RefCell<Vec<TarDone>>>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<PlannedClip>> {
        let keyed = keys_op(self, plan.dedup.clone(), ctx);
        let mut parts = keyed.partition(3, |k| match k {
            Keyed::Clip(_) => (0, k),
            Keyed::Bin(..) | Keyed::Captions(..) => (1, k),
            Keyed::Part(_) => (2, k),
        });
        let key_parts = parts.pop().expect("3 parts").flat_map(|k| match k {
            Keyed::Part(p) => Some(p),
            _ => None,
        });
        let reports = parts.pop().expect("3 parts");
        let clips = parts.pop().expect("3 parts").flat_map(|k| match k {
            Keyed::Clip(c) => Some(c),
            _ => None,
        });
        let releases = registry_op(reports, &plan, ctx).broadcast();
        let mut planned = bins_op(clips, releases, &plan, ctx).partition(2, |p| match p {
            Planned::Clip(_) => (0, p),
            Planned::Part(_) => (1, p),
        });
        let bin_parts = planned.pop().expect("2 parts").flat_map(|p| match p {
            Planned::Part(p) => Some(p),
            _ => None,
        });
        gather_parts(key_parts.concat(bin_parts), summary, done, ctx);
        planned.pop().expect("2 parts").flat_map(|p| match p {
            Planned::Clip(c) => Some(c),
            _ => None,
        })
    }
}

fn keys_op<'scope>(
    outcomes: Stream<'scope, u64, Vec<MetaOutcome>>,
    dedup: Option<Arc<HashSet<String>>>,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<Keyed>> {
    let ctx = ctx.clone();
    let route = |o: &MetaOutcome| match o {
        MetaOutcome::Clip(c) => stable_hash(c.span_uuid.as_bytes()),
        other => seq_of(other),
    };
    outcomes.unary_frontier(Exchange::new(route), "PlanKeys", move |cap, _info| {
        let mut filter = KeyFilter::new(dedup);
        let mut pages: BTreeMap<u64, Vec<MetaOutcome>> = BTreeMap::new();
        let mut held = Some(cap);
        let mut failed = false;
        move |(input, frontier), output| {
            input.for_each(|c, data| {
                pages
                    .entry(*c.least().expect("a page"))
                    .or_default()
                    .append(data)
            });
            let Some(h) = held.as_mut() else {
                return;
            };
            let open = first_open(frontier);
            while let Some(entry) = pages.first_entry() {
                if *entry.key() >= open {
                    break;
                }
                let t = *entry.key();
                let admitted = {
                    let _t = ctx.clock.time("plan_keys");
                    filter.page(entry.remove())
                };
                if let (false, Some(message)) = (failed, &filter.part.summary.failed) {
                    // the storage failed: the plan is incomplete, the job stops (completed
                    // tars stay recorded for --resume)
                    failed = true;
                    tracing::error!("{message}");
                    ctx.failure.fail(JobFailure::Plan(message.clone()));
                }
                let at = h.delayed(&t);
                let mut session = output.session(&at);
                for (bin, seq) in admitted.first_bins {
                    session.give(Keyed::Bin(bin, seq));
                }
                if admitted.windows + admitted.missing > 0 {
                    session.give(Keyed::Captions(admitted.windows, admitted.missing));
                }
                session.give_iterator(admitted.clips.into_iter().map(Keyed::Clip));
            }
            if open == u64::MAX {
                let part = std::mem::take(&mut filter.part);
                output.session(&*h).give(Keyed::Part(part));
                held = None;
            } else if open > *h.time() {
                h.downgrade(&open);
            }
        }
    })
}

fn registry_op<'scope>(
    reports: Stream<'scope, u64, Vec<Keyed>>,
    plan: &StreamPlan,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<Release>> {
    let ctx = ctx.clone();
    let field = plan.require_captions.clone();
    let mut start = plan.start.clone();
    let (journal, mtime) = (plan.journal.clone(), plan.grouping.mtime);
    let leader = reports.scope().index() == 0;
    reports.unary_frontier(Exchange::new(|_| 0), "BinRegistry", move |cap, _info| {
        let mut registry = BinRegistry::default();
        let mut held = leader.then_some(cap);
        let mut released = false;
        move |(input, frontier), output| {
            input.for_each(|c, data| {
                let page = *c.least().expect("a page");
                for r in data.drain(..) {
                    match r {
                        Keyed::Bin(bin, seq) => registry.report_bin(bin, seq, page),
                        Keyed::Captions(w, m) => registry.report_captions(w, m),
                        _ => {}
                    }
                }
            });
            let Some(h) = held.as_mut() else {
                return;
            };
            let open = first_open(frontier);
            if !released {
                let out_of_time = open >= HOLD_PAGES;
                match registry.verdict(field.as_deref(), out_of_time) {
                    Verdict::Hold => return,
                    Verdict::Refuse(message) => {
                        tracing::error!("{message}");
                        output.session(&*h).give(Release::Refused(message.clone()));
                        ctx.failure.fail(JobFailure::Refused(message));
                        held = None;
                        return;
                    }
                    Verdict::Go => {
                        released = true;
                        let resume = matches!(start, Some(Start::Resume));
                        // the job is recorded before its first tar can be written
                        if let Some(Start::Record(job)) = start.take() {
                            if let Err(e) = journal.write_job(&job) {
                                let message = format!("the job journal could not be written: {e}");
                                tracing::error!("{message}");
                                ctx.failure.fail(JobFailure::Plan(message));
                            }
                        }
                        output.session(&*h).give(Release::Start { mtime, resume });
                    }
                }
            }
            for (page, bin, rank) in registry.release(|p| p < open) {
                output.session(&h.delayed(&page)).give(Release::Rank(bin, rank));
            }
            if open == u64::MAX {
                let (missing, _) = registry.captions();
                if missing > 0 {
                    tracing::warn!(
                        "{missing} clips have windows without a caption{}: they are written with valid: false and those windows get no embedding",
                        field.as_deref().map(|f| format!(" (\"{f}\")")).unwrap_or_default()
                    );
                }
                held = None;
            } else if open > *h.time() {
                h.downgrade(&open);
            }
        }
    })
}

// clips stay boxed from `read_meta` to the planned clip (`PlannedClip::meta`): moved, not copied
#[allow(clippy::vec_box, clippy::borrowed_box)]
fn bins_op<'scope>(
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

fn gather_parts(
    parts: Stream<'_, u64, Vec<PlanPart>>,
    summary: Rc<RefCell<Option<PlanSummary>>>,
    done: Rc<RefCell<Vec<TarDone>>>,
    ctx: &JobContext,
) {
    let ctx = ctx.clone();
    let leader = parts.scope().index() == 0;
    let mut merged = PlanPart::default();
    let mut finished = !leader;
    parts.sink(
        Exchange::new(|_| 0),
        "PlanParts",
        move |(input, frontier)| {
            input.for_each(|_c, data| {
                for p in data.drain(..) {
                    merged.merge(p);
                }
            });
            if !finished && frontier.is_empty() {
                finished = true;
                let (s, resumed) = std::mem::take(&mut merged).into_summary();
                if let Some(message) = &s.failed {
                    // a storage failure in another process: this one learns of it here
                    ctx.failure.fail(JobFailure::Plan(message.clone()));
                }
                if !resumed.is_empty() {
                    tracing::info!("resuming: {} tar triples already complete", resumed.len());
                }
                done.borrow_mut().extend(resumed);
                ctx.milestones.reach(Milestone::Planned);
                *summary.borrow_mut() = Some(s);
            }
        },
    );
}

#[cfg(test)]
mod tests;
