use super::*;
use crate::record::{Reject, RejectKind, WarningKind};
use crate::report::Progress;

fn clip(seq: u64, uuid: &str, bin: Option<&str>, bytes: u64) -> MetaOutcome {
    MetaOutcome::Clip(Box::new(ClipMeta {
        seq,
        rel_path: format!("{seq:03}.json"),
        span_uuid: uuid.into(),
        bin: bin.map(str::to_string),
        num_bytes: bytes,
        clip_path: String::new(),
        captions: vec![],
        json: b"{}".to_vec(),
        warnings: vec![WarningKind::NumBytesMismatch],
        meta_hash: seq,
        ..Default::default()
    }))
}

fn reject(seq: u64) -> MetaOutcome {
    MetaOutcome::Reject(Reject {
        meta: format!("{seq:03}.json"),
        span_uuid: None,
        kind: RejectKind::InvalidJson,
        message: "bad".into(),
    })
}

#[test]
fn plan_orders_bins_by_first_appearance_and_counts_reconcile() {
    let planner = Planner {
        target_tar_bytes: 10,
        max_tars_per_part: 2,
        mtime: 0,
        ..Default::default()
    };
    // given out of order, as workers deliver them
    let outcomes = vec![
        clip(4, "e", Some("B"), 6),
        clip(1, "b", Some("A"), 6),
        reject(2),
        clip(0, "a", Some("B"), 6),
        MetaOutcome::Invalid { seq: 3 },
        clip(5, "a", Some("A"), 1),
        clip(6, "g", None, 1),
        clip(7, "h", Some("B"), 6),
        clip(8, "i", Some("A"), 3),
    ];
    let (planned, s) = planner.plan(outcomes);
    assert_eq!(s.listed, 9);
    assert_eq!(s.invalid, 1);
    assert_eq!(s.dropped_no_bin, 1);
    assert_eq!(s.rejects.len(), 2);
    assert_eq!(s.rejects[0].meta, "002.json");
    assert_eq!(s.rejects[1].kind, RejectKind::DuplicateSpanUuid);
    assert!(s.rejects[1].message.contains("000.json"));
    assert_eq!(s.planned, 5);
    assert_eq!(
        s.listed,
        s.planned + s.invalid + s.dropped_no_bin + s.rejects.len() as u64
    );
    assert_eq!(s.warnings.get(&WarningKind::NumBytesMismatch), Some(&5));
    let got: Vec<(u64, &str, &str, u32, u32, u32)> = planned
        .iter()
        .map(|p| {
            (
                p.rank,
                p.meta.span_uuid.as_str(),
                p.tar.bin.as_str(),
                p.tar.part,
                p.tar.tar,
                p.index,
            )
        })
        .collect();
    // bin B appears first (seq 0): a(6) | e(6) | h(6) -> 3 tars, 2 per part
    assert_eq!(
        got,
        vec![
            (0, "a", "B", 0, 0, 0),
            (1, "e", "B", 0, 1, 0),
            (2, "h", "B", 1, 0, 0),
            (3, "b", "A", 0, 0, 0),
            (4, "i", "A", 0, 0, 1),
        ]
    );
    assert_eq!(
        s.bins
            .iter()
            .map(|b| (b.0.as_str(), b.1.len()))
            .collect::<Vec<_>>(),
        vec![("B", 3), ("A", 1)]
    );
    assert_eq!(planned[3].tar_len, 2);
}

#[test]
fn plan_is_independent_of_arrival_order() {
    let planner = Planner {
        target_tar_bytes: 7,
        max_tars_per_part: 3,
        mtime: 0,
        ..Default::default()
    };
    let make = || -> Vec<MetaOutcome> {
        (0..60)
            .map(|i| match i % 7 {
                0 => reject(i),
                1 => MetaOutcome::Invalid { seq: i },
                _ => clip(
                    i,
                    &format!("u{}", i % 50),
                    Some(["X", "Y", "Z"][(i % 3) as usize]),
                    i % 5,
                ),
            })
            .collect()
    };
    let (p0, s0) = planner.plan(make());
    for seed in 0..20u64 {
        let mut v = make();
        // deterministic shuffle
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1;
        for i in (1..v.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (p, s) = planner.plan(v);
        assert_eq!(p, p0, "seed {seed}");
        assert_eq!(s, s0, "seed {seed}");
    }
}

#[test]
fn dataflow_plans_once_on_worker_zero() {
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::{Inspect, ToStream};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let (seen2, summaries2) = (seen.clone(), summaries.clone());
    timely::execute(timely::Config::process(3), move |worker| {
        let seen = seen2.clone();
        let me = worker.index() as u64;
        let summary: Rc<RefCell<Option<PlanSummary>>> = Rc::default();
        let progress = Arc::new(Progress::default());
        worker.dataflow::<u64, _, _>(|scope| {
            // every worker contributes outcomes, as read_meta does
            let outcomes: Vec<MetaOutcome> = (0..4)
                .map(|i| clip(me * 4 + i, &format!("u{}", me * 4 + i), Some("B"), 4))
                .collect();
            outcomes
                .to_stream(scope)
                .assign_tars(
                    Planner {
                        target_tar_bytes: 8,
                        max_tars_per_part: 100,
                        mtime: 0,
                        ..Default::default()
                    },
                    None,
                    summary.clone(),
                    &JobContext::new(progress.clone(), Default::default()),
                )
                .inspect(move |p| seen.lock().unwrap().push((me, p.rank, p.tar.tar, p.index)));
        });
        while worker.step_or_park(None) {}
        if let Some(s) = summary.take() {
            summaries2.lock().unwrap().push((
                me,
                s.planned,
                progress.planned.load(Ordering::Relaxed),
            ));
        }
    })
    .unwrap();
    assert_eq!(*summaries.lock().unwrap(), vec![(0, 12, 12)]);
    let mut v = seen.lock().unwrap().clone();
    v.sort_by_key(|x| x.1);
    assert_eq!(v.len(), 12);
    assert!(v.iter().all(|x| x.0 == 0));
    assert_eq!(
        v.iter().map(|x| (x.2, x.3)).collect::<Vec<_>>()[..4],
        [(0, 0), (0, 1), (1, 0), (1, 1)]
    );
}
