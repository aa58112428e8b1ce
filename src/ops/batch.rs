//! `batch`: tokenizes captions and groups clips into encoder batches. A clip's windows never
//! straddle two batches, so `encode` can finish every clip of a batch on its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;

use crate::ops::reload::Reloader;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, CapabilitySet};
use timely::dataflow::Stream;

use crate::error::JobFailure;
use crate::job::JobContext;
use crate::metrics::Metrics;
use crate::record::PlannedClip;

mod times;
use times::QueuedTimes;

/// Clips to encode together, with the token ids of each clip's captioned windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodeBatch {
    /// The clips, in rank order.
    pub clips: Vec<PlannedClip>,
    /// Per clip, the token ids of each window that has a caption, in window order; empty for
    /// a window whose embedding is reused from an earlier version or not needed.
    pub ids: Vec<Vec<Vec<u32>>>,
}

impl EncodeBatch {
    /// Number of sequences to encode.
    pub fn windows(&self) -> usize {
        self.ids.iter().flatten().filter(|s| !s.is_empty()).count()
    }
}

/// Queues clips in arrival (rank) order and cuts them into batches of at most `max_windows`
/// captioned windows and `max_tokens` tokens (a clip over either limit forms a batch of its
/// own). The encoder packs a batch without padding, so a batch costs what its tokens cost.
#[derive(Debug)]
pub struct Batcher {
    max_windows: usize,
    max_tokens: usize,
    queue: VecDeque<PlannedClip>,
    /// Slim clips (planned, metadata not yet read again), in order, behind `queue`.
    slim: VecDeque<PlannedClip>,
    /// The front clip, already tokenized, that did not fit the previous batch.
    held: Option<(PlannedClip, Vec<Vec<u32>>)>,
}

impl Batcher {
    /// A batcher of at most `max_windows` windows (at least 1) and `max_tokens` tokens per batch.
    pub fn new(max_windows: usize, max_tokens: usize) -> Self {
        Batcher {
            max_windows: max_windows.max(1),
            max_tokens: max_tokens.max(1),
            queue: VecDeque::new(),
            slim: VecDeque::new(),
            held: None,
        }
    }

    /// Queues a clip.
    pub fn push(&mut self, clip: PlannedClip) {
        self.queue.push_back(clip);
    }

    /// Queues a slim clip, to be completed by [`Batcher::reload`] when its turn comes.
    pub fn push_slim(&mut self, clip: PlannedClip) {
        self.slim.push_back(clip);
    }

    /// Completes slim clips with `reload`, `n` at a time, until `n` clips are ready: only the
    /// clips about to be encoded hold their full metadata.
    pub fn reload(&mut self, n: usize, reload: &dyn Fn(Vec<PlannedClip>) -> Vec<PlannedClip>) {
        if self.queue.len() >= n || self.slim.is_empty() {
            return;
        }
        let take: Vec<PlannedClip> = self.slim.drain(..n.min(self.slim.len())).collect();
        self.queue.extend(reload(take));
    }

    /// Whether no clip is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.slim.is_empty() && self.held.is_none()
    }

    /// Cuts the next batch, tokenizing its captions with `tokenize`.
    pub fn next_batch(&mut self, tokenize: &dyn Fn(&str) -> Vec<u32>) -> Option<EncodeBatch> {
        let mut batch = EncodeBatch {
            clips: Vec::new(),
            ids: Vec::new(),
        };
        let (mut windows, mut tokens) = (0, 0);
        loop {
            let (clip, ids) = match self.held.take() {
                Some(held) => held,
                None => match self.queue.pop_front() {
                    Some(clip) => {
                        // a window whose embedding is reused (or not needed) gets no ids
                        let ids: Vec<Vec<u32>> = clip
                            .meta
                            .captions
                            .iter()
                            .flatten()
                            .enumerate()
                            .map(|(i, c)| {
                                if clip.encodes_window(i) {
                                    tokenize(c)
                                } else {
                                    Vec::new()
                                }
                            })
                            .collect();
                        (clip, ids)
                    }
                    None => break,
                },
            };
            let n = ids.iter().filter(|s| !s.is_empty()).count();
            let t: usize = ids.iter().map(Vec::len).sum();
            let full = windows + n > self.max_windows || tokens + t > self.max_tokens;
            if !batch.clips.is_empty() && n > 0 && full {
                self.held = Some((clip, ids));
                break;
            }
            windows += n;
            tokens += t;
            batch.ids.push(ids);
            batch.clips.push(clip);
        }
        (!batch.clips.is_empty()).then_some(batch)
    }
}

/// The `batch` operator.
pub trait Batch<'scope> {
    /// Spreads clips over workers by rank and emits one batch per activation, so that
    /// encoding and writing keep pace with each other instead of queueing everything.
    ///
    /// A batch goes out at the least input time among its clips, and the operator holds a
    /// time only while some clip of that time is queued: its output frontier follows the
    /// queue, so a probe downstream can pace the listing (see
    /// [`crate::ops::list::BackPressure`]).
    fn batch<F>(
        self,
        max_windows: usize,
        max_tokens: usize,
        tokenize: F,
        reloader: Option<Reloader>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<EncodeBatch>>
    where
        F: Fn(&str) -> Vec<u32> + 'static;
}

impl<'scope> Batch<'scope> for Stream<'scope, u64, Vec<PlannedClip>> {
    fn batch<F>(
        self,
        max_windows: usize,
        max_tokens: usize,
        tokenize: F,
        reloader: Option<Reloader>,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<EncodeBatch>>
    where
        F: Fn(&str) -> Vec<u32> + 'static,
    {
        let clock = ctx.clock.clone();
        let progress = ctx.progress.clone();
        let failure = ctx.failure.clone();
        // slim clips are read again this many at a time
        let chunk = max_windows.clamp(16, 256);
        let scope = self.scope();
        self.unary(
            Exchange::new(|c: &PlannedClip| c.rank),
            "Batch",
            move |_cap, info| {
                let activator = scope.activator_for(info.address);
                let mut batcher = Batcher::new(max_windows, max_tokens);
                // the input times of the queued clips, in the batcher's order, and a
                // capability for each: a time is released once all its clips went out
                let mut times = QueuedTimes::default();
                let mut caps: BTreeMap<u64, Capability<u64>> = BTreeMap::new();
                move |input, output| {
                    input.for_each(|c, data| {
                        let time = c.least().copied();
                        if times.push(time, data.len()) {
                            if let Some(cap) = c.retain_least(output.output_index()) {
                                caps.insert(*cap.time(), cap);
                            }
                        }
                        Metrics::add(&progress.metrics.batch_queued, data.len() as u64);
                        for clip in data.drain(..) {
                            match reloader {
                                Some(_) => batcher.push_slim(clip),
                                None => batcher.push(clip),
                            }
                        }
                    });
                    if let Some(r) = &reloader {
                        let _t = clock.time("reload_meta");
                        batcher.reload(chunk, &|clips| {
                            if failure.is_set() {
                                // the job stops: the clips go on unread, to be dropped (each
                                // read would only wait out its retries)
                                return clips;
                            }
                            let (clips, outage) = r.reload(clips);
                            if let Some(message) = outage {
                                // the storage failed, not the input: the job stops (resumably)
                                tracing::error!("{message}");
                                failure.fail(JobFailure::Plan(message));
                            }
                            clips
                        });
                    }
                    let batch = {
                        let _t = clock.time("batch");
                        batcher.next_batch(&tokenize)
                    };
                    if let Some(batch) = batch {
                        let n = batch.clips.len() as u64;
                        progress
                            .metrics
                            .batch_queued
                            .fetch_sub(n, Ordering::Relaxed);
                        let taken = times.take(batch.clips.len());
                        match taken.least.and_then(|t| caps.get(&t)) {
                            Some(cap) => output.session(cap).give(batch),
                            // clips that came with no time go out with none
                            None => output.session(&CapabilitySet::new()).give(batch),
                        }
                        for t in taken.released {
                            caps.remove(&t);
                        }
                    }
                    debug_assert_eq!(batcher.is_empty(), times.is_empty());
                    if !batcher.is_empty() {
                        activator.activate();
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests;
