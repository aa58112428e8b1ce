//! Copies within the output, for tars an incremental run takes over unchanged: a hard link
//! locally (no bytes move; a plain copy where linking fails, e.g. across file systems), a
//! server-side copy on an object store (S3 `CopyObject`); an object over
//! [`super::StorageOptions::server_copy_max_bytes`] (5 GiB, `CopyObject`'s limit) is streamed
//! through this process as a multipart upload instead. Either way the target appears whole or
//! not at all.

use futures::stream::{self, StreamExt};
use object_store::ObjectStoreExt;

use super::{Location, Storage, StorageError};

impl Storage {
    /// Copies each `(from, to, size)`, replacing `to`; `size` is the source's size when the
    /// caller knows it (otherwise an object store is asked, one HEAD each). Object-store copies
    /// run [`super::StorageOptions::read_concurrency`] at a time. Results in input order.
    pub fn copy_many(
        &self,
        pairs: &[(Location, Location, Option<u64>)],
    ) -> Vec<Result<(), StorageError>> {
        if !pairs.iter().any(|(f, _, _)| f.is_remote()) {
            return pairs.iter().map(|(f, t, _)| copy_local(f, t)).collect();
        }
        let rt = match self.runtime() {
            Ok(rt) => rt,
            Err(m) => {
                return pairs
                    .iter()
                    .map(|(_, t, _)| Err(StorageError::other("copy", t, m.clone())))
                    .collect()
            }
        };
        // the few objects too large for a server-side copy are streamed
        let limit = self.shared.opts.server_copy_max_bytes;
        let mut sizes: Vec<Option<u64>> = pairs.iter().map(|(_, _, s)| *s).collect();
        let unknown: Vec<usize> = (0..pairs.len())
            .filter(|&i| sizes[i].is_none() && same_bucket(&pairs[i].0, &pairs[i].1))
            .collect();
        let asked: Vec<Location> = unknown.iter().map(|&i| pairs[i].0.clone()).collect();
        for (&i, size) in unknown.iter().zip(self.size_many(&asked)) {
            // a failed HEAD leaves the size unknown: the copy itself then reports the error
            sizes[i] = size.ok();
        }
        let streamed: Vec<bool> = pairs
            .iter()
            .zip(&sizes)
            .map(|((f, t, _), size)| same_bucket(f, t) && size.is_some_and(|n| n > limit))
            .collect();
        let futs = pairs
            .iter()
            .zip(&streamed)
            .map(|((from, to, _), streamed)| {
                let prepared = match (from, to) {
                    _ if *streamed => Err(Ok(())),
                    (Location::Local(_), Location::Local(_)) => Err(copy_local(from, to)),
                    (Location::Remote { .. }, Location::Remote { .. }) if same_bucket(from, to) => {
                        match (self.remote("copy", from), self.remote("copy", to)) {
                            (Ok((store, _, f)), Ok((_, _, t))) => Ok((store, f, t)),
                            (Err(e), _) | (_, Err(e)) => Err(Err(e)),
                        }
                    }
                    _ => Err(Err(StorageError::other(
                        "copy",
                        to,
                        format!("cannot copy from {from}: not in the same bucket"),
                    ))),
                };
                async move {
                    match prepared {
                        Err(done) => done,
                        Ok((store, f, t)) => store
                            .copy(&f, &t)
                            .await
                            .map_err(|e| StorageError::obj("copy", from, &e)),
                    }
                }
            });
        let mut results: Vec<Result<(), StorageError>> = rt.block_on(
            stream::iter(futs)
                .buffered(self.shared.opts.read_concurrency.max(1))
                .collect(),
        );
        for (i, (from, to, _)) in pairs.iter().enumerate() {
            if streamed[i] {
                results[i] = self.stream_copy(from, to);
            }
        }
        results
    }

    /// Copies through this process: ranged reads in, a multipart upload out (aborted on error).
    fn stream_copy(&self, from: &Location, to: &Location) -> Result<(), StorageError> {
        let mut clip = self.fetch(from).open()?;
        let mut w = self.writer(to)?;
        std::io::copy(&mut clip.reader, &mut w).map_err(|e| StorageError::io("copy", to, &e))?;
        w.finish().map(|_| ())
    }
}

/// Both remote, in the same store and bucket: what a server-side copy can do.
fn same_bucket(from: &Location, to: &Location) -> bool {
    match (from, to) {
        (
            Location::Remote {
                scheme: s1,
                bucket: b1,
                ..
            },
            Location::Remote {
                scheme: s2,
                bucket: b2,
                ..
            },
        ) => s1 == s2 && b1 == b2,
        _ => false,
    }
}

fn copy_local(from: &Location, to: &Location) -> Result<(), StorageError> {
    let (Some(f), Some(t)) = (from.as_local(), to.as_local()) else {
        return Err(StorageError::other(
            "copy",
            to,
            format!("cannot copy from {from}: one is local, the other not"),
        ));
    };
    let dir = t.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io("copy", &dir.display(), &e))?;
    let name = t
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(super::writer::temporary_name(&name));
    if std::fs::hard_link(f, &tmp).is_err() {
        if let Err(e) = std::fs::copy(f, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(StorageError::io("copy", &f.display(), &e));
        }
    }
    let renamed = std::fs::rename(&tmp, t);
    // renaming onto a hard link of the same file succeeds without doing anything (POSIX), and
    // a failed rename leaves it: either way the temporary name must go
    let _ = std::fs::remove_file(&tmp);
    renamed.map_err(|e| StorageError::io("copy", &t.display(), &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    #[test]
    fn local_copies_are_links_replace_the_target_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("sub/b.tar"));
        std::fs::write(&a, b"one").unwrap();
        let st = Storage::new(StorageOptions::default());
        let pair = [(Location::Local(a.clone()), Location::Local(b.clone()), None)];
        // twice: the second finds the target already linked to the same file
        for _ in 0..2 {
            for r in st.copy_many(&pair) {
                r.unwrap();
            }
            assert_eq!(std::fs::read(&b).unwrap(), b"one");
            let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["b.tar"]);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                std::fs::metadata(&a).unwrap().ino(),
                std::fs::metadata(&b).unwrap().ino()
            );
        }
        // a missing source names itself
        let missing = [(
            Location::Local(dir.path().join("nope")),
            Location::Local(b.clone()),
            None,
        )];
        let err = st.copy_many(&missing).remove(0).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
