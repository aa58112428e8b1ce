//! `list`: emits the input's listing ([`Lister`]: every file under `metas/<version>/` in
//! listing order, or the clips of `summary.json`) from worker 0, one page per activation at
//! timestamp = page number, so that metadata is read while the listing goes on.
//!
//! The listing must be whole: a storage failure after some pages would otherwise leave the
//! job planning part of the input. It goes out as one last entry marked `failed`, which
//! `read_meta` turns into [`crate::record::MetaOutcome::Failed`]: the planner then fails the
//! job without recording a plan, as for a metadata file that could not be read.

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use crate::error::ShardError;
use crate::input::{Lister, PAGE_SIZE};
use crate::job::JobContext;
use crate::record::ListedFile;

/// Builds the `list` source: worker 0 emits the listing in pages of [`PAGE_SIZE`] files, page
/// `n` at time `n`; the other workers nothing.
pub fn list_metas<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    list_pages(scope, lister, PAGE_SIZE, ctx)
}

/// [`list_metas`] with pages of `page_size` files.
pub fn list_pages<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    page_size: usize,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    let clock = ctx.clock.clone();
    let leader = scope.index() == 0;
    source(scope, "List", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = leader.then_some(cap);
        let mut pages = lister.pages(page_size);
        let mut page_no = 0u64;
        move |output| {
            let Some(c) = cap.as_mut() else {
                return;
            };
            let _t = clock.time("list");
            match pages.next() {
                Some(Ok(files)) => {
                    output.session(&*c).give_iterator(files.into_iter());
                    page_no += 1;
                    c.downgrade(&page_no);
                    activator.activate();
                }
                Some(Err(ShardError::Storage(e))) => {
                    let message = format!(
                        "the listing of {} stopped after {} files: {e} (the storage failed, not the input: the job stops instead of planning part of the input; once the storage is reachable, continue it with --resume, or an --append by appending again)",
                        pages.root(),
                        pages.listed()
                    );
                    tracing::error!("{message}");
                    let failed = ListedFile {
                        seq: pages.listed(),
                        rel_path: String::new(),
                        size: 0,
                        error: Some(message),
                        failed: true,
                    };
                    output.session(&*c).give(failed);
                    cap = None;
                }
                // the root (or summary.json) was checked before the dataflow started; it
                // vanished or changed since
                Some(Err(e)) => {
                    tracing::error!("{e}");
                    cap = None;
                }
                None => cap = None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Location, Storage, StorageOptions};
    use timely::dataflow::operators::Inspect;

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
                list_metas(scope, lister, &JobContext::default())
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
                list_pages(scope, lister, 3, &JobContext::default()).inspect_core(move |event| {
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
                list_pages(scope, lister, 3, &ctx)
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
}
