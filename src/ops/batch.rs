//! `batch`: tokenizes captions and groups clips into encoder batches. A clip's windows never
//! straddle two batches, so `encode` can finish every clip of a batch on its own.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;

use crate::ops::reload::Reloader;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use crate::job::JobContext;
use crate::record::PlannedClip;

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
        // slim clips are read again this many at a time
        let chunk = max_windows.clamp(16, 256);
        let scope = self.scope();
        self.unary(
            Exchange::new(|c: &PlannedClip| c.rank),
            "Batch",
            move |_cap, info| {
                let activator = scope.activator_for(info.address);
                let mut batcher = Batcher::new(max_windows, max_tokens);
                let mut cap: Option<Capability<u64>> = None;
                move |input, output| {
                    input.for_each(|c, data| {
                        if cap.is_none() {
                            cap = c.retain_least(output.output_index());
                        }
                        for clip in data.drain(..) {
                            match reloader {
                                Some(_) => batcher.push_slim(clip),
                                None => batcher.push(clip),
                            }
                        }
                    });
                    if let Some(r) = &reloader {
                        let _t = clock.time("reload_meta");
                        batcher.reload(chunk, &|clips| r.reload(clips));
                    }
                    let batch = {
                        let _t = clock.time("batch");
                        batcher.next_batch(&tokenize)
                    };
                    if let (Some(batch), Some(cap)) = (batch, cap.as_ref()) {
                        output.session(cap).give(batch);
                    }
                    if batcher.is_empty() {
                        cap = None;
                    } else {
                        activator.activate();
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(rank: u64, captions: &[Option<&str>]) -> PlannedClip {
        crate::ops::test_support::planned_clip(rank, captions, b"{}")
    }

    /// The fake encoder's tokenizer: the caption's bytes, then 1.
    fn tok(s: &str) -> Vec<u32> {
        use crate::model::{FakeEncoder, TextEncoder};
        FakeEncoder::new(1).tokenize(s)
    }

    #[test]
    fn batches_respect_window_budget_and_keep_clips_whole() {
        let mut b = Batcher::new(3, 1000);
        b.push(clip(0, &[Some("a"), Some("b")]));
        b.push(clip(1, &[Some("c"), None, Some("d")]));
        b.push(clip(2, &[Some("e")]));
        b.push(clip(3, &[Some("f"), Some("g"), Some("h"), Some("i")]));
        b.push(clip(4, &[]));
        let sizes: Vec<(Vec<u64>, usize)> = std::iter::from_fn(|| b.next_batch(&tok))
            .map(|batch| {
                (
                    batch.clips.iter().map(|c| c.rank).collect(),
                    batch.windows(),
                )
            })
            .collect();
        assert_eq!(sizes, vec![(vec![0], 2), (vec![1, 2], 3), (vec![3, 4], 4)]);
    }

    #[test]
    fn batches_respect_token_budget() {
        // tok gives len(text) + 1 tokens
        let mut b = Batcher::new(100, 10);
        b.push(clip(0, &[Some("aaaa")])); // 5
        b.push(clip(1, &[Some("bbbb")])); // 5 -> 10 fits
        b.push(clip(2, &[Some("c")])); // 2 -> over
        b.push(clip(3, &[Some("dddddddddddddddddddd")])); // 21 alone
        b.push(clip(4, &[Some("e")]));
        let got: Vec<Vec<u64>> = std::iter::from_fn(|| b.next_batch(&tok))
            .map(|b| b.clips.iter().map(|c| c.rank).collect())
            .collect();
        assert_eq!(got, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
        assert!(b.is_empty());
    }

    #[test]
    fn ids_follow_captioned_windows() {
        let mut b = Batcher::new(8, 1000);
        b.push(clip(0, &[Some("ab"), None, Some("c")]));
        let batch = b.next_batch(&tok).unwrap();
        assert_eq!(batch.ids, vec![vec![vec![97, 98, 1], vec![99, 1]]]);
        assert!(b.next_batch(&tok).is_none());
    }

    #[test]
    fn dataflow_batches_every_clip_once() {
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::{Inspect, ToStream};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        timely::execute(timely::Config::process(3), move |worker| {
            let seen = seen2.clone();
            let leader = worker.index() == 0;
            worker.dataflow::<u64, _, _>(|scope| {
                let clips: Vec<PlannedClip> = if leader {
                    (0..20).map(|r| clip(r, &[Some("x")])).collect()
                } else {
                    vec![]
                };
                clips
                    .to_stream(scope)
                    .batch(4, 1000, tok, None, &JobContext::default())
                    .inspect(move |b| seen.lock().unwrap().extend(b.clips.iter().map(|c| c.rank)));
            });
        })
        .unwrap();
        let mut v = seen.lock().unwrap().clone();
        v.sort();
        assert_eq!(v, (0..20).collect::<Vec<_>>());
    }
}
