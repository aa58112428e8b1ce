//! `list`: every file under `metas/<version>/`, recursively, in listing order (SPEC §2.1).

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

use crate::error::ShardError;
use crate::ops::StageClock;
use crate::record::ListedFile;
use crate::spec::listing_order;
use crate::storage::{Location, Storage};

/// Lists a metadata directory, local or on an object store.
#[derive(Clone, Debug)]
pub struct Lister {
    root: Location,
    storage: Storage,
}

impl Lister {
    /// A lister of `root` (`<input>/metas/<version>`).
    pub fn new(storage: Storage, root: Location) -> Self {
        Lister { root, storage }
    }

    /// Every file below the root, sorted by relative path in byte order. Entries that cannot
    /// be listed (an unreadable subdirectory, a non-UTF-8 name) are returned with `error` set,
    /// so they are reported instead of silently missing.
    pub fn list(&self) -> Result<Vec<ListedFile>, ShardError> {
        let found = self.storage.list(&self.root).map_err(|e| {
            if e.not_found {
                ShardError::NoMetaDir(self.root.to_string())
            } else {
                ShardError::Storage(e)
            }
        })?;
        let mut names: Vec<String> = found.iter().map(|f| f.rel.clone()).collect();
        listing_order(&mut names);
        let mut entries: std::collections::HashMap<String, crate::storage::Listed> =
            found.into_iter().map(|f| (f.rel.clone(), f)).collect();
        Ok(names
            .into_iter()
            .enumerate()
            .map(|(seq, rel_path)| {
                let entry = entries.remove(&rel_path);
                ListedFile {
                    seq: seq as u64,
                    size: entry.as_ref().map_or(0, |e| e.size),
                    error: entry.and_then(|e| e.error),
                    rel_path,
                }
            })
            .collect())
    }
}

/// Builds the `list` source: worker 0 emits the listing, the other workers nothing.
pub fn list_metas<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    clock: StageClock,
) -> Stream<'scope, u64, Vec<ListedFile>> {
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
    use crate::storage::StorageOptions;

    fn local(p: impl Into<std::path::PathBuf>) -> Lister {
        Lister::new(
            Storage::new(StorageOptions::default()),
            Location::Local(p.into()),
        )
    }

    #[test]
    fn lists_recursively_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ab")).unwrap();
        for f in ["ab/c.json", "ab-c.json", "b.txt", "a.json"] {
            std::fs::write(root.join(f), b"{}").unwrap();
        }
        let got: Vec<String> = local(root)
            .list()
            .unwrap()
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(got, ["a.json", "ab-c.json", "ab/c.json", "b.txt"]);
    }

    #[test]
    fn missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = local(dir.path().join("nope")).list().unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
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
                list_metas(scope, lister, StageClock::default())
                    .inspect(move |f| seen.lock().unwrap().push(f.seq));
            });
        })
        .unwrap();
        let mut v = seen.lock().unwrap().clone();
        v.sort();
        assert_eq!(v, [0, 1, 2, 3, 4]);
    }
}
