//! The first planning step: every outcome of `read_meta`, counted; clips filtered (semantic
//! duplicates, no bin, a `span_uuid` already used) by the worker that owns their key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::JobFailure;
use crate::hash::stable_hash;
use crate::job::JobContext;

use crate::record::{ClipMeta, MetaOutcome, Reject, RejectKind, WarningKind};

use super::{first_open, seq_of, Keyed, PlanPart};

/// What a page leaves for the bin planners and the registry.
#[derive(Debug, Default, PartialEq)]
pub struct Admitted {
    /// Clips planned, in listing order.
    pub clips: Vec<Box<ClipMeta>>,
    /// Bins this worker saw for the first time (or earlier than before), with the seq.
    pub first_bins: Vec<(String, u64)>,
    /// Captioned windows of the admitted clips.
    pub windows: u64,
    /// Admitted clips with windows without a caption.
    pub missing: u64,
    /// Clips rejected for a `span_uuid` already used.
    pub duplicates: u64,
}

/// One worker's share of the keys: the `span_uuid`s it owns and the counts of what it saw.
/// Fed one page at a time, pages in listing order, so the first of two clips with one key is
/// kept, as by the reference's sorted listing (SPEC §2.5).
#[derive(Debug, Default)]
pub struct KeyFilter {
    dedup: Option<Arc<HashSet<String>>>,
    /// `span_uuid` → the metadata file that used it first.
    seen: HashMap<Box<str>, Box<str>>,
    /// Bin → the least seq reported for it.
    bins: HashMap<String, u64>,
    /// Counts and rejects so far.
    pub part: PlanPart,
}

impl KeyFilter {
    /// A filter dropping the sample keys of `dedup` (semantic duplicates).
    pub fn new(dedup: Option<Arc<HashSet<String>>>) -> Self {
        KeyFilter {
            dedup,
            ..Default::default()
        }
    }

    /// Takes one page's outcomes (any order) owned by this worker.
    pub fn page(&mut self, mut outcomes: Vec<MetaOutcome>) -> Admitted {
        outcomes.sort_by_key(seq_of);
        let mut out = Admitted::default();
        let s = &mut self.part.summary;
        s.listed += outcomes.len() as u64;
        for outcome in outcomes {
            match outcome {
                MetaOutcome::Reject(r) => s.rejects.push(r),
                MetaOutcome::Invalid { .. } => s.invalid += 1,
                MetaOutcome::Failed { seq, message } => {
                    if self.part.failed_seq.is_none_or(|f| seq < f) {
                        self.part.failed_seq = Some(seq);
                        s.failed = Some(message);
                    }
                }
                MetaOutcome::Clip(clip) => {
                    if self
                        .dedup
                        .as_ref()
                        .is_some_and(|d| d.contains(&clip.span_uuid))
                    {
                        s.removed_semantic_dedup += 1;
                        continue;
                    }
                    let Some(bin) = &clip.bin else {
                        s.dropped_no_bin += 1;
                        continue;
                    };
                    if let Some(first) = self.seen.get(clip.span_uuid.as_str()) {
                        out.duplicates += 1;
                        s.rejects.push(Reject {
                            meta: clip.rel_path.clone(),
                            span_uuid: Some(clip.span_uuid.clone()),
                            kind: RejectKind::DuplicateSpanUuid,
                            message: format!(
                                "span_uuid {} already used by {first}",
                                clip.span_uuid
                            ),
                        });
                        continue;
                    }
                    self.seen.insert(
                        clip.span_uuid.as_str().into(),
                        clip.rel_path.as_str().into(),
                    );
                    for w in &clip.warnings {
                        *s.warnings.entry(*w).or_default() += 1;
                    }
                    match self.bins.get_mut(bin) {
                        Some(least) if *least <= clip.seq => {}
                        Some(least) => {
                            *least = clip.seq;
                            out.first_bins.push((bin.clone(), clip.seq));
                        }
                        None => {
                            self.bins.insert(bin.clone(), clip.seq);
                            out.first_bins.push((bin.clone(), clip.seq));
                        }
                    }
                    out.windows += clip.caption_hashes.len() as u64;
                    out.missing += u64::from(clip.warnings.contains(&WarningKind::MissingCaption));
                    out.clips.push(clip);
                }
            }
        }
        out
    }
}

/// The keys step, as an operator: see [`KeyFilter`].
pub(super) fn keys_op<'scope>(
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
                // read_meta counts the other rejects as they come
                for _ in 0..admitted.duplicates {
                    ctx.progress.metrics.reject(RejectKind::DuplicateSpanUuid);
                }
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
