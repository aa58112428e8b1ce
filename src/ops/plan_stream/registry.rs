//! The bin registry (worker 0): gives each bin its `bin_order`, the rank of its first clip in
//! listing order, as soon as no earlier first clip can still arrive; and holds the plan back
//! until a caption is seen, so that a misspelt caption field is refused before anything is
//! written.

use std::collections::HashMap;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use super::{first_open, Keyed, Release, Start, StreamPlan, HOLD_PAGES};
use crate::error::JobFailure;
use crate::job::JobContext;

/// Whether the plan may go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep holding the plan: no caption seen yet, and the hold has not run out.
    Hold,
    /// Release the plan.
    Go,
    /// Refuse the job, with this message.
    Refuse(String),
}

/// Ranks bins by their first clip, page by page; see the module docs.
#[derive(Debug, Default)]
pub struct BinRegistry {
    /// Bins not ranked yet → (least seq reported, its page).
    pending: HashMap<String, (u64, u64)>,
    /// Bins ranked so far.
    ranked: HashMap<String, u32>,
    /// Captioned windows and clips with uncaptioned windows reported so far.
    windows: u64,
    missing: u64,
}

impl BinRegistry {
    /// A worker saw `bin` first at `seq`, in page `page`.
    pub fn report_bin(&mut self, bin: String, seq: u64, page: u64) {
        if self.ranked.contains_key(&bin) {
            return;
        }
        let e = self.pending.entry(bin).or_insert((seq, page));
        if seq < e.0 {
            *e = (seq, page);
        }
    }

    /// Admitted clips brought `windows` captioned windows and `missing` clips with windows
    /// lacking a caption.
    pub fn report_captions(&mut self, windows: u64, missing: u64) {
        self.windows += windows;
        self.missing += missing;
    }

    /// Ranks the pending bins whose first page is complete (every page before `frontier` is),
    /// in listing order: (page, bin, rank).
    pub fn release(&mut self, complete: impl Fn(u64) -> bool) -> Vec<(u64, String, u32)> {
        let mut ready: Vec<(u64, u64, String)> = Vec::new();
        self.pending.retain(|bin, (seq, page)| {
            let done = complete(*page);
            if done {
                ready.push((*seq, *page, bin.clone()));
            }
            !done
        });
        ready.sort();
        ready
            .into_iter()
            .map(|(_, page, bin)| {
                let rank = self.ranked.len() as u32;
                self.ranked.insert(bin.clone(), rank);
                (page, bin, rank)
            })
            .collect()
    }

    /// Whether the plan may go on: `field` is the caption field when a plan without any
    /// caption must be refused (none: go), `out_of_time` once the hold has lasted its pages or
    /// the input is complete.
    pub fn verdict(&self, field: Option<&str>, out_of_time: bool) -> Verdict {
        let Some(field) = field else {
            return Verdict::Go;
        };
        if self.windows > 0 || !out_of_time {
            return if self.windows > 0 {
                Verdict::Go
            } else {
                Verdict::Hold
            };
        }
        if self.missing == 0 {
            return Verdict::Go;
        }
        Verdict::Refuse(format!(
            "no window of the first {} clips with windows has a \"{field}\" caption: check --captioning-algorithm; to write every clip without embeddings (valid: false), pass --allow-no-captions",
            self.missing
        ))
    }

    /// Clips with windows lacking a caption, and captioned windows, so far.
    pub fn captions(&self) -> (u64, u64) {
        (self.missing, self.windows)
    }
}

/// The registry step, as an operator on worker 0: see [`BinRegistry`].
pub(super) fn registry_op<'scope>(
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
                        // the job is recorded before its first tar can be written; a resumed
                        // one retracts the earlier run's report first
                        let recorded = match start.take() {
                            Some(Start::Record(job)) => journal.write_job(&job),
                            Some(Start::Resume) => journal.retract_report().map_err(Into::into),
                            None => Ok(()),
                        };
                        if let Err(e) = recorded {
                            let message = format!("the job journal could not be written: {e}");
                            tracing::error!("{message}");
                            ctx.failure.fail(JobFailure::Plan(message));
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
