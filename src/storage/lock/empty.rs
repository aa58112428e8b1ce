//! Whether an output holds nothing but the lock its job just took.

use crate::storage::{Location, Storage, StorageError};

impl Storage {
    /// True when `dir` holds no file or object other than `keep` (a `/`-separated path
    /// relative to it); empty folders and a killed writer's temporary files (a job killed
    /// while it wrote `job.json`) do not count. Stops at the first other entry.
    pub fn is_empty_dir_except(&self, dir: &Location, keep: &str) -> Result<bool, StorageError> {
        match dir {
            Location::Local(root) => {
                let mut stack = vec![root.clone()];
                while let Some(d) = stack.pop() {
                    let entries = match std::fs::read_dir(&d) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == *root => {
                            return Ok(true)
                        }
                        Err(e) => return Err(StorageError::io("list", &d.display(), &e)),
                    };
                    for entry in entries {
                        let entry =
                            entry.map_err(|e| StorageError::io("list", &d.display(), &e))?;
                        let p = entry.path();
                        // not followed: a link is an entry like any other
                        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                        let temporary = entry
                            .file_name()
                            .to_str()
                            .is_some_and(crate::storage::writer::is_temporary);
                        if is_dir {
                            stack.push(p);
                        } else if !temporary
                            && p.strip_prefix(root).ok() != Some(std::path::Path::new(keep))
                        {
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            }
            Location::Remote { .. } => {
                use futures::StreamExt;
                let (store, rt, path) = self.remote("list", dir)?;
                let prefix = (!path.as_ref().is_empty()).then_some(&path);
                let kept = dir.join(keep).to_string();
                let first_two: Vec<_> =
                    rt.block_on(async { store.list(prefix).take(2).collect().await });
                for got in first_two {
                    let meta = got.map_err(|e| StorageError::obj("list", dir, &e))?;
                    let Location::Remote { scheme, bucket, .. } = dir else {
                        unreachable!("remote")
                    };
                    let shown = Location::Remote {
                        scheme: *scheme,
                        bucket: bucket.clone(),
                        key: meta.location.to_string(),
                    }
                    .to_string();
                    if shown != kept {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}
