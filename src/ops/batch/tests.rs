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

/// Batches out, in order: the time each went out at and its clips' ranks.
type Out = Vec<(u64, Vec<u64>)>;

/// Feeds clips at times 0, 1 and 2 (one batch each, or slim clips read again with
/// `reloader`) and steps the worker, input still open.
/// Returns, after each step, (batches out so far, whether the output frontier passed 0) and
/// the time each batch went out at.
fn step_three_times(max_windows: usize, reloader: Option<Reloader>) -> (Vec<(usize, bool)>, Out) {
    use std::cell::RefCell;
    use std::rc::Rc;
    use timely::dataflow::operators::{Inspect, Probe};
    use timely::dataflow::{InputHandleVec, ProbeHandle};
    timely::execute_directly(move |worker| {
        let out: Rc<RefCell<Out>> = Rc::default();
        let mut input: InputHandleVec<u64, PlannedClip> = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let out2 = out.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            input
                .to_stream(scope)
                .batch(max_windows, 1000, tok, reloader, &JobContext::default())
                .inspect_core(move |event| {
                    if let Ok((stamp, batches)) = event {
                        let t = *stamp.least().expect("a time");
                        for b in batches {
                            let ranks = b.clips.iter().map(|c| c.rank).collect();
                            out2.borrow_mut().push((t, ranks));
                        }
                    }
                })
                .probe_with(&probe);
        });
        for t in 0..3 {
            input.send(clip(t, &[Some("x")]));
            input.advance_to(t + 1);
        }
        let mut steps = Vec::new();
        for _ in 0..20 {
            worker.step();
            steps.push((out.borrow().len(), !probe.less_equal(&0)));
        }
        // the input is still open: nothing passes time 3
        assert!(probe.less_equal(&3));
        drop(input);
        while worker.step_or_park(None) {}
        assert!(probe.done());
        let out = out.borrow().clone();
        (steps, out)
    })
}

#[test]
fn output_frontier_follows_the_queue() {
    let (steps, out) = step_three_times(1, None);
    assert_frontier_follows_the_queue(&steps, &out);
}

/// One batch per clip, each at its clip's time, and the output frontier passed time 0 once
/// its batch was out, while later clips were still queued.
fn assert_frontier_follows_the_queue(steps: &[(usize, bool)], out: &Out) {
    // one batch per activation, each at its clip's time
    assert_eq!(*out, vec![(0, vec![0]), (1, vec![1]), (2, vec![2])]);
    // the output frontier passed time 0 while later clips were still queued
    assert!(
        steps.iter().any(|&(n, past0)| past0 && n < 3),
        "time 0 was held until the queue emptied: {steps:?}"
    );
    // and never before the batch of time 0 went out
    assert!(
        steps.iter().all(|&(n, past0)| !past0 || n >= 1),
        "{steps:?}"
    );
}

#[test]
fn a_batch_goes_out_at_its_least_time() {
    let (_, out) = step_three_times(2, None);
    assert_eq!(out, vec![(0, vec![0, 1]), (2, vec![2])]);
}

#[test]
fn slim_clips_read_again_keep_their_times() {
    use crate::storage::{Location, Storage, StorageOptions};
    // an empty metadata folder: every clip read again is marked gone, and still goes out
    // (its writer records the reject), in order, with its time
    let dir = tempfile::tempdir().unwrap();
    let root = Location::Local(dir.path().to_path_buf());
    let reloader = Reloader {
        reader: crate::ops::read_meta::MetaReader {
            storage: Storage::new(StorageOptions::default()),
            meta_dir: root.clone(),
            input_root: root,
            remaps: vec![],
            caption_field: "qwen_caption".into(),
            bins: crate::spec::BinSpec::Frames,
            allowed_roots: vec![],
            slim: false,
            check_clips: false,
            layout: crate::layout::OutputLayout::Reference,
        },
    };
    let (steps, out) = step_three_times(1, Some(reloader));
    assert_frontier_follows_the_queue(&steps, &out);
}
