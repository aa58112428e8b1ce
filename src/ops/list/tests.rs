use super::*;
use crate::storage::{Location, Storage, StorageOptions};
use timely::dataflow::operators::Inspect;
use timely::dataflow::Stream;

fn local(p: impl Into<std::path::PathBuf>) -> Lister {
    Lister::new(
        Storage::new(StorageOptions::default()),
        Location::Local(p.into()),
    )
}

#[test]
fn dataflow_emits_listing_once() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(dir.path().join(format!("{i}.json")), b"{}").unwrap();
    }
    let lister = local(dir.path());
    timely::execute(timely::Config::process(2), move |worker| {
        let seen = seen2.clone();
        let lister = lister.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            list_metas(scope, lister, None, &JobContext::default())
                .inspect(move |f| seen.lock().unwrap().push(f.seq));
        });
    })
    .unwrap();
    let mut v = seen.lock().unwrap().clone();
    v.sort();
    assert_eq!(v, [0, 1, 2, 3, 4]);
}

#[test]
fn pages_go_out_at_increasing_times() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..7 {
        std::fs::write(dir.path().join(format!("{i}.json")), b"{}").unwrap();
    }
    let lister = local(dir.path());
    timely::execute(timely::Config::process(2), move |worker| {
        let seen = seen2.clone();
        let lister = lister.clone();
        let me = worker.index();
        worker.dataflow::<u64, _, _>(|scope| {
            list_pages(scope, lister, 3, None, &JobContext::default()).inspect_core(move |event| {
                if let Ok((stamp, files)) = event {
                    let t = *stamp.expect_singleton();
                    let mut seen = seen.lock().unwrap();
                    seen.extend(files.iter().map(|f| (me, t, f.seq)));
                }
            });
        });
    })
    .unwrap();
    let v = seen.lock().unwrap().clone();
    // in emission order on worker 0: page n at time n
    let want: Vec<(usize, u64, u64)> = (0..7).map(|i| (0, i / 3, i)).collect();
    assert_eq!(v, want);
}

#[test]
fn a_listing_failing_midway_fails_the_job() {
    use crate::ops::assign_tars::{AssignTars, Planner};
    use crate::ops::read_meta::{MetaReader, ReadMeta};
    use crate::record::PlanSummary;
    use std::cell::RefCell;
    use std::rc::Rc;
    let storage = Storage::new(StorageOptions::default());
    storage.serve_listing_that_fails("flaky", &["m/a.json", "m/b.json", "m/c.json"]);
    let meta_dir = Location::parse("s3://flaky/m").unwrap();
    let lister = Lister::new(storage.clone(), meta_dir.clone());
    let reader = MetaReader {
        storage,
        meta_dir: meta_dir.clone(),
        input_root: Location::parse("s3://flaky").unwrap(),
        remaps: vec![],
        caption_field: "qwen_caption".into(),
        bins: crate::spec::BinSpec::Frames,
        allowed_roots: vec![],
        slim: true,
        check_clips: false,
        layout: crate::layout::OutputLayout::Reference,
    };
    let s = timely::execute_directly(move |worker| {
        let summary: Rc<RefCell<Option<PlanSummary>>> = Rc::default();
        worker.dataflow::<u64, _, _>(|scope| {
            let ctx = JobContext::default();
            list_pages(scope, lister, 3, None, &ctx)
                .read_meta(reader, &ctx)
                .assign_tars(Planner::default(), None, summary.clone(), &ctx);
        });
        while worker.step_or_park(None) {}
        summary.take().expect("planned")
    });
    let failed = s.failed.expect("the job fails");
    assert!(
        failed.contains("the listing of s3://flaky/m stopped after 3 files"),
        "{failed}"
    );
    assert!(failed.contains("--resume"), "{failed}");
}

/// A downstream stage that completes pages only as fast as the test lets it: it holds each
/// page and passes on the pages before `allowed`.
fn paced<'scope>(
    files: Stream<'scope, u64, Vec<ListedFile>>,
    allowed: std::rc::Rc<std::cell::Cell<u64>>,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    use std::collections::BTreeMap;
    use timely::dataflow::channels::pact::Exchange;
    use timely::dataflow::operators::generic::Operator;
    use timely::dataflow::operators::Capability;
    let scope = files.scope();
    files.unary(
        Exchange::new(|f: &ListedFile| f.seq),
        "Paced",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            let mut held: BTreeMap<u64, (Capability<u64>, Vec<ListedFile>)> = BTreeMap::new();
            move |input, output| {
                input.for_each(|c, data| {
                    let cap = c.retain_least(output.output_index()).expect("a time");
                    let page = held.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
                    page.1.append(data);
                });
                while held
                    .first_key_value()
                    .is_some_and(|(t, _)| *t < allowed.get())
                {
                    let (_, (cap, mut files)) = held.pop_first().expect("a page");
                    output.session(&cap).give_container(&mut files);
                }
                if !held.is_empty() {
                    activator.activate_after(std::time::Duration::from_millis(1));
                }
            }
        },
    )
}

/// Lists `files` files one per page through a [`paced`] stage that completes one more page
/// every few steps, on `workers` workers. Returns each page as it went out, with the frontier
/// of the probe after the paced stage at that moment, and the files out of the paced stage.
fn list_paced(
    files: u64,
    ahead: Option<u64>,
    workers: usize,
) -> (Vec<(u64, Option<u64>)>, Vec<u64>) {
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::Probe;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..files {
        std::fs::write(dir.path().join(format!("{i:03}.json")), b"{}").unwrap();
    }
    let lister = local(dir.path());
    let emitted = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(Vec::new()));
    let (emitted2, done2) = (emitted.clone(), done.clone());
    timely::execute(timely::Config::process(workers), move |worker| {
        let (emitted, done) = (emitted2.clone(), done2.clone());
        let lister = lister.clone();
        let allowed = std::rc::Rc::new(std::cell::Cell::new(0));
        let probe = ProbeHandle::new();
        let back_pressure = ahead.map(|ahead_pages| BackPressure {
            probe: probe.clone(),
            ahead_pages,
        });
        let at_emission = probe.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let listed = list_pages(scope, lister, 1, back_pressure, &JobContext::default())
                .inspect_core(move |event| {
                    if let Ok((stamp, files)) = event {
                        if !files.is_empty() {
                            let frontier = at_emission.with_frontier(|f| f.first().copied());
                            let page = *stamp.least().expect("a time");
                            emitted.lock().unwrap().push((page, frontier));
                        }
                    }
                });
            paced(listed, allowed.clone())
                .inspect(move |f| done.lock().unwrap().push(f.seq))
                .probe_with(&probe);
        });
        let mut steps = 0u64;
        while worker.step_or_park(Some(std::time::Duration::from_millis(1))) {
            steps += 1;
            if steps.is_multiple_of(4) {
                allowed.set(allowed.get() + 1);
            }
        }
    })
    .unwrap();
    let emitted = emitted.lock().unwrap().clone();
    let mut done = done.lock().unwrap().clone();
    done.sort();
    (emitted, done)
}

#[test]
fn back_pressure_bounds_the_look_ahead() {
    for ahead in [0, 3] {
        let (emitted, done) = list_paced(20, Some(ahead), 1);
        assert_eq!(
            emitted.iter().map(|e| e.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        for &(page, frontier) in &emitted {
            let frontier = frontier.expect("the listing holds the probe back");
            assert!(
                frontier + ahead >= page,
                "page {page} went out with the probe at {frontier}, {ahead} pages ahead: {emitted:?}"
            );
        }
        // the listing went as far ahead as it may
        assert!(
            emitted
                .iter()
                .any(|&(page, frontier)| page >= ahead && frontier == Some(page - ahead)),
            "{emitted:?}"
        );
        assert_eq!(done, (0..20).collect::<Vec<_>>());
    }
}

#[test]
fn without_back_pressure_the_listing_runs_ahead() {
    // what makes the test above meaningful: the paced stage lags the listing
    let (emitted, done) = list_paced(20, None, 1);
    assert!(
        emitted
            .iter()
            .any(|&(page, frontier)| frontier.is_some_and(|f| f + 3 < page)),
        "{emitted:?}"
    );
    assert_eq!(done, (0..20).collect::<Vec<_>>());
}

#[test]
fn back_pressure_lets_every_page_through_on_several_workers() {
    let (emitted, done) = list_paced(25, Some(2), 3);
    assert_eq!(
        emitted.iter().map(|e| e.0).collect::<Vec<_>>(),
        (0..25).collect::<Vec<_>>()
    );
    assert!(emitted
        .iter()
        .all(|&(page, f)| f.is_some_and(|f| f + 2 >= page)));
    assert_eq!(done, (0..25).collect::<Vec<_>>());
}
