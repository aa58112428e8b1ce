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
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::{Broadcast, Map, Partition};
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;
use timely::progress::frontier::MutableAntichain;

use crate::job::JobContext;
use crate::journal::{JobFingerprint, Journal};
use crate::record::{ClipMeta, MetaOutcome, PlanSummary, PlannedClip, TarDone};

use bins::bins_op;
use keys::keys_op;
use parts::gather_parts;
use registry::registry_op;

mod bins;
mod keys;
mod parts;
mod registry;

pub use bins::{BinPlanner, Completed, Grouping, TarPath};
pub use keys::{Admitted, KeyFilter};
pub use parts::PlanPart;
pub use registry::{BinRegistry, Verdict};

/// Pages the registry may hold the plan while no caption has been seen: past them, a plan
/// whose windows lack captions and that has none is refused. Below the listing's look-ahead
/// ([`crate::ops::list::AHEAD_PAGES`]), so that the listing never waits for the hold.
pub const HOLD_PAGES: u64 = 4;
const _: () = assert!(HOLD_PAGES < crate::ops::list::AHEAD_PAGES);

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

#[cfg(test)]
mod tests;
