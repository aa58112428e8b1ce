//! `list`: emits the input's listing ([`Lister`]: every file under `metas/<version>/` in
//! listing order, or the clips of `summary.json`) from worker 0.

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use crate::input::Lister;
use crate::job::JobContext;
use crate::record::ListedFile;

/// Builds the `list` source: worker 0 emits the listing, the other workers nothing.
pub fn list_metas<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    let clock = ctx.clock.clone();
    let leader = scope.index() == 0;
    source(scope, "List", move |cap, _info| {
        let mut cap = Some(cap);
        move |output| {
            if let Some(cap) = cap.take() {
                if leader {
                    let _t = clock.time("list");
                    match lister.list() {
                        Ok(files) => output.session(&cap).give_iterator(files.into_iter()),
                        // the root was checked before the dataflow started; it vanished since
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Location, Storage, StorageOptions};

    fn local(p: impl Into<std::path::PathBuf>) -> Lister {
        Lister::new(
            Storage::new(StorageOptions::default()),
            Location::Local(p.into()),
        )
    }

    #[test]
    fn dataflow_emits_listing_once() {
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::Inspect;
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
}
