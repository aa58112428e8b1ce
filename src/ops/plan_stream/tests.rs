use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use timely::dataflow::operators::Inspect;
use timely::dataflow::InputHandleVec;

use super::*;
use crate::job::{FailureSignal, JobContext};
use crate::ops::assign_tars::Planner;
use crate::record::{Reject, RejectKind, TarId, WarningKind};
use crate::report::Progress;

/// splitmix64: the random plans below are reproducible from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn clip(seq: u64, uuid: &str, bin: Option<&str>, bytes: u64, captioned: bool) -> MetaOutcome {
    MetaOutcome::Clip(Box::new(ClipMeta {
        seq,
        rel_path: format!("{seq:05}.json"),
        span_uuid: uuid.into(),
        bin: bin.map(str::to_string),
        num_bytes: bytes,
        warnings: if captioned {
            vec![]
        } else {
            vec![WarningKind::MissingCaption]
        },
        caption_hashes: if captioned { vec![seq] } else { vec![] },
        meta_hash: seq,
        ..Default::default()
    }))
}

/// A random listing: duplicate keys, clips without a bin, invalid and rejected files, a
/// random number of bins and clip sizes around the target.
fn random_listing(rng: &mut Rng) -> Vec<MetaOutcome> {
    let n = 1 + rng.below(300);
    let keys = 1 + n * 3 / 4;
    let bins = 1 + rng.below(6);
    (0..n)
        .map(|seq| match rng.below(20) {
            0 => MetaOutcome::Invalid { seq },
            1 => MetaOutcome::Reject(Reject {
                meta: format!("{seq:05}.json"),
                span_uuid: None,
                kind: RejectKind::InvalidJson,
                message: "bad".into(),
            }),
            r => {
                let bin = (r != 2).then(|| format!("bin{}", rng.below(bins)));
                let uuid = format!("k{}", rng.below(keys));
                clip(
                    seq,
                    &uuid,
                    bin.as_deref(),
                    1 + rng.below(12),
                    rng.below(9) > 0,
                )
            }
        })
        .collect()
}

type Planned = Vec<(TarId, u32, u32, String, u64)>;

/// Plans `listing` with `plan_stream` on `workers` threads, `page` outcomes per timestamp.
fn stream_plan(
    listing: &[MetaOutcome],
    page: usize,
    workers: usize,
    plan: StreamPlan,
) -> (Planned, Option<PlanSummary>, Option<String>) {
    let out: Arc<Mutex<Planned>> = Arc::default();
    let summary: Arc<Mutex<Option<PlanSummary>>> = Arc::default();
    let failure = FailureSignal::default();
    let (out2, summary2, failure2) = (out.clone(), summary.clone(), failure.clone());
    let listing = listing.to_vec();
    timely::execute(timely::Config::process(workers), move |worker| {
        let ctx = JobContext::new(Arc::new(Progress::default()), failure2.clone());
        let mut input: InputHandleVec<u64, MetaOutcome> = InputHandleVec::new();
        let gathered: Rc<RefCell<Option<PlanSummary>>> = Rc::default();
        let done: Rc<RefCell<Vec<TarDone>>> = Rc::default();
        let out = out2.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            input
                .to_stream(scope)
                .plan_stream(plan.clone(), gathered.clone(), done.clone(), &ctx)
                .inspect(move |c| {
                    let key = (c.tar.clone(), c.index, c.tar_len, c.meta.span_uuid.clone());
                    out.lock()
                        .unwrap()
                        .push((key.0, key.1, key.2, key.3, c.mtime));
                });
        });
        if worker.index() == 0 {
            for (t, chunk) in listing.chunks(page.max(1)).enumerate() {
                input.advance_to(t as u64);
                for o in chunk {
                    input.send(o.clone());
                }
                worker.step();
            }
        }
        input.close();
        while worker.step_or_park(None) {}
        if let Some(s) = gathered.take() {
            *summary2.lock().unwrap() = Some(s);
        }
    })
    .unwrap();
    let mut planned = out.lock().unwrap().clone();
    planned.sort();
    let s = summary.lock().unwrap().take();
    (planned, s, failure.get().map(|f| f.to_string()))
}

fn options(rng: &mut Rng) -> (Planner, StreamPlan) {
    let planner = Planner {
        target_tar_bytes: 5 + rng.below(30),
        max_tars_per_part: 1 + rng.below(3) as u32,
        mtime: 7,
        drop_below: if rng.below(2) == 0 {
            0
        } else {
            1 + rng.below(4) as u32
        },
        dedup: (rng.below(3) == 0).then(|| Arc::new(HashSet::from(["k1".into(), "k5".into()]))),
    };
    let plan = StreamPlan {
        grouping: Grouping {
            target_tar_bytes: planner.target_tar_bytes,
            max_tars_per_part: planner.max_tars_per_part,
            drop_below: planner.drop_below,
            mtime: planner.mtime,
        },
        dedup: planner.dedup.clone(),
        require_captions: None,
        journal: Journal::new(
            crate::storage::Storage::new(crate::storage::StorageOptions::default()),
            crate::storage::Location::Local("/nonexistent".into()),
        ),
        start: None,
        completed: Arc::default(),
        unchanged: |_, _| false,
    };
    (planner, plan)
}

/// The oracle: the whole plan made in one step over the gathered listing.
fn gathered_plan(planner: &Planner, listing: &[MetaOutcome]) -> (Planned, PlanSummary) {
    let (clips, summary) = planner.plan(listing.to_vec());
    let mut planned: Planned = clips
        .into_iter()
        .map(|c| (c.tar, c.index, c.tar_len, c.meta.span_uuid.clone(), c.mtime))
        .collect();
    planned.sort();
    (planned, summary)
}

#[test]
fn streaming_plan_equals_the_gathered_plan_for_random_listings() {
    for seed in 0..60u64 {
        let mut rng = Rng(seed);
        let listing = random_listing(&mut rng);
        let (planner, plan) = options(&mut rng);
        let (want, want_summary) = gathered_plan(&planner, &listing);
        let page = 1 + rng.below(40) as usize;
        let workers = 1 + rng.below(4) as usize;
        let (got, got_summary, failure) = stream_plan(&listing, page, workers, plan);
        assert_eq!(failure, None, "seed {seed}");
        assert_eq!(
            got, want,
            "seed {seed}: planned clips ({workers} workers, pages of {page})"
        );
        assert_eq!(
            got_summary,
            Some(want_summary),
            "seed {seed}: summary ({workers} workers, pages of {page})"
        );
    }
}

#[test]
fn a_plan_without_any_caption_is_refused_and_nothing_is_planned() {
    let listing: Vec<MetaOutcome> = (0..30)
        .map(|s| clip(s, &format!("k{s}"), Some("A"), 1, false))
        .collect();
    let (_, mut plan) = options(&mut Rng(1));
    plan.require_captions = Some("qwen_caption".into());
    let (got, _, failure) = stream_plan(&listing, 4, 2, plan.clone());
    assert!(got.is_empty(), "{got:?}");
    let failure = failure.expect("refused");
    assert!(failure.contains("\"qwen_caption\""), "{failure}");
    assert!(failure.contains("--allow-no-captions"), "{failure}");

    // one caption, late in the hold: the plan goes on, every clip planned
    let mut listing = listing;
    listing[9] = clip(9, "k9", Some("A"), 1, true);
    let (got, s, failure) = stream_plan(&listing, 4, 2, plan);
    assert_eq!(failure, None);
    assert_eq!(got.len() as u64, s.unwrap().planned);
    assert_eq!(got.len(), 30);
}

#[test]
fn key_filter_keeps_the_first_key_in_listing_order_across_pages() {
    let mut f = KeyFilter::new(None);
    // a page's outcomes come in any order
    let a = f.page(vec![
        clip(3, "x", Some("B"), 1, true),
        clip(1, "x", Some("A"), 1, true),
    ]);
    assert_eq!(a.clips.iter().map(|c| c.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(a.first_bins, vec![("A".to_string(), 1)]);
    let b = f.page(vec![
        clip(5, "x", Some("A"), 1, true),
        clip(6, "y", None, 1, true),
    ]);
    assert!(b.clips.is_empty());
    let s = &f.part.summary;
    assert_eq!((s.listed, s.dropped_no_bin, s.rejects.len()), (4, 1, 2));
    assert!(s.rejects[0].message.contains("00001.json"));
}

#[test]
fn registry_ranks_bins_by_first_clip_once_their_page_is_complete() {
    let mut r = BinRegistry::default();
    r.report_bin("late".into(), 40, 2);
    r.report_bin("B".into(), 12, 1);
    r.report_bin("A".into(), 15, 1);
    // a smaller first seq from another worker, same page
    r.report_bin("A".into(), 10, 1);
    assert_eq!(r.release(|p| p < 1), vec![]);
    assert_eq!(
        r.release(|p| p < 2),
        vec![(1, "A".to_string(), 0), (1, "B".to_string(), 1)]
    );
    r.report_bin("A".into(), 50, 3);
    assert_eq!(r.release(|_| true), vec![(2, "late".to_string(), 2)]);
    assert_eq!(r.verdict(Some("c"), false), Verdict::Hold);
    r.report_captions(0, 3);
    assert!(matches!(r.verdict(Some("c"), true), Verdict::Refuse(_)));
    assert_eq!(r.verdict(None, true), Verdict::Go);
    r.report_captions(1, 0);
    assert_eq!(r.verdict(Some("c"), false), Verdict::Go);
}
