//! `assign_tars`: the plan in one step, for `reshard` and `--append` (which compare the whole
//! plan with their base; a plain `shard` plans as a stream, see
//! [`plan_stream`](crate::ops::plan_stream), and [`Planner::plan`] is its oracle). Drops
//! duplicates and clips without a bin, then gives every clip its tar triple and position
//! (SPEC §2.5–§4). Runs on worker 0 once all metadata has arrived; clips and embeddings never pass through it. A [`PlanGate`]
//! then records or checks the job's fingerprint and drops the triples an interrupted run
//! already completed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use crate::job::{JobContext, Milestone};
use crate::ops::plan_stream::KeyFilter;
use crate::record::{ClipMeta, MetaOutcome, PlanSummary, PlannedClip, TarId};
use crate::spec::group_tars_dropping;

/// Tar grouping parameters.
#[derive(Clone, Debug, Default)]
pub struct Planner {
    /// Target tar size in bytes (metadata `num_bytes` summed).
    pub target_tar_bytes: u64,
    /// Tars per part.
    pub max_tars_per_part: u32,
    /// mtime given to every clip's tar members.
    pub mtime: u64,
    /// A bin's last tar with fewer clips than this is dropped (0: never; `--drop-small-shards`).
    pub drop_below: u32,
    /// Sample keys the semantic-dedup tables mark as duplicates.
    pub dedup: Option<Arc<std::collections::HashSet<String>>>,
}

impl Planner {
    /// Plans all outcomes (any order) into clips in output order and a summary.
    pub fn plan(&self, outcomes: Vec<MetaOutcome>) -> (Vec<PlannedClip>, PlanSummary) {
        // the streaming plan's filter, over the whole listing as one page
        let mut filter = KeyFilter::new(self.dedup.clone());
        let admitted = filter.page(outcomes);
        let mut summary = filter.part.summary;
        let mut bin_order: HashMap<String, usize> = HashMap::new();
        let mut bins: Vec<(String, Vec<Box<ClipMeta>>)> = Vec::new();
        for clip in admitted.clips {
            let bin = clip.bin.clone().expect("admitted clips have a bin");
            let i = *bin_order.entry(bin.clone()).or_insert_with(|| {
                bins.push((bin, Vec::new()));
                bins.len() - 1
            });
            bins[i].1.push(clip);
        }
        let mut planned = Vec::new();
        for (order, (bin, clips)) in bins.into_iter().enumerate() {
            let sizes: Vec<u64> = clips.iter().map(|c| c.num_bytes).collect();
            let groups = group_tars_dropping(
                &sizes,
                self.target_tar_bytes,
                self.max_tars_per_part,
                self.drop_below,
            );
            let kept: usize = groups.iter().map(|g| g.members.len()).sum();
            summary.dropped_small_tar += (clips.len() - kept) as u64;
            if groups.is_empty() {
                // a bin left without a tar is omitted entirely (SPEC §4)
                continue;
            }
            let mut clips = clips.into_iter();
            let mut tars = Vec::with_capacity(groups.len());
            for g in groups {
                let tar = TarId {
                    bin_order: order as u32,
                    bin: bin.clone(),
                    part: g.part,
                    tar: g.tar,
                };
                let len = g.members.len() as u32;
                for index in 0..len {
                    let meta = clips.next().expect("groups cover every clip");
                    planned.push(PlannedClip {
                        rank: planned.len() as u64,
                        tar: tar.clone(),
                        index,
                        tar_len: len,
                        meta,
                        mtime: self.mtime,
                        gone: None,
                        copied: Default::default(),
                        reuse: Vec::new(),
                    });
                }
                tars.push(tar);
            }
            summary.bins.push((bin, tars));
        }
        summary.planned = planned.len() as u64;
        // listing order is byte order of the relative path
        summary
            .rejects
            .sort_by(|a, b| a.meta.as_bytes().cmp(b.meta.as_bytes()));
        (planned, summary)
    }
}

/// The `assign_tars` operator.
pub trait AssignTars<'scope> {
    /// Gathers every outcome on worker 0, plans once the input is complete, stores the summary
    /// in `summary` and emits the planned clips in rank order.
    fn assign_tars(
        self,
        planner: Planner,
        gate: Option<PlanGate>,
        summary: Rc<RefCell<Option<PlanSummary>>>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<PlannedClip>>;
}

impl<'scope> AssignTars<'scope> for Stream<'scope, u64, Vec<MetaOutcome>> {
    fn assign_tars(
        self,
        planner: Planner,
        gate: Option<PlanGate>,
        summary: Rc<RefCell<Option<PlanSummary>>>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<PlannedClip>> {
        let JobContext {
            clock,
            milestones,
            progress,
            failure,
        } = ctx.clone();
        let leader = self.scope().index() == 0;
        self.unary_frontier(
            Exchange::new(|_: &MetaOutcome| 0),
            "AssignTars",
            move |_cap, _info| {
                let mut stash: Vec<MetaOutcome> = Vec::new();
                let mut cap = None;
                let mut done = !leader;
                move |(input, frontier), output| {
                    input.for_each(|c, data| {
                        // the least time seen: the listing comes in pages, one time each
                        let earlier = |k: &Capability<u64>| c.least().is_some_and(|t| t < k.time());
                        if cap.as_ref().is_none_or(earlier) {
                            cap = c.retain_least(output.output_index());
                        }
                        stash.append(data);
                    });
                    if !done && frontier.is_empty() {
                        done = true;
                        let _t = clock.time("assign_tars");
                        let (mut planned, mut s) = planner.plan(std::mem::take(&mut stash));
                        if let Some(gate) = &gate {
                            planned = gate.admit(planned, &mut s, &failure);
                        }
                        progress
                            .planned
                            .store(planned.len() as u64, Ordering::Relaxed);
                        // read_meta counted the other rejects as they came
                        s.rejects
                            .iter()
                            .filter(|r| r.kind == crate::record::RejectKind::DuplicateSpanUuid)
                            .for_each(|r| progress.metrics.reject(r.kind));
                        milestones.reach(Milestone::Planned);
                        *summary.borrow_mut() = Some(s);
                        if let Some(cap) = cap.take() {
                            output.session(&cap).give_iterator(planned.into_iter());
                        }
                    }
                }
            },
        )
    }
}

mod gate;
pub use gate::{clips_unchanged, triple_unchanged, PlanGate};

#[cfg(test)]
mod tests;
