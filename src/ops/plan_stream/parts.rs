//! Every step's share of the plan's summary, merged on worker 0.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::JobFailure;
use crate::job::{JobContext, Milestone};
use crate::record::{PlanSummary, TarDone};

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

/// Merges every step's [`PlanPart`] on worker 0 once the input is complete.
pub(super) fn gather_parts(
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
