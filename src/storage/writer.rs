//! Streaming writers that publish a file or object only when it is complete.
//!
//! Locally: a `.<name>.<pid>-<n>.partial` file beside the target, synced and renamed into place. On an
//! object store: bytes are buffered up to one part; a file that ends within the first part is
//! one PUT, anything larger is a multipart upload (parts of `part_size` bytes, S3's minimum
//! being 5 MiB, at most `parts_in_flight` uploading at once), completed by `finish`. An
//! upload that fails, or a writer dropped without `finish`, is aborted server-side so no
//! orphaned multipart upload is left.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::StorageError;

/// A file or object being written; see the module documentation.
pub struct ObjectWriter {
    shown: String,
    bytes: u64,
    state: State,
}

enum State {
    Local {
        file: BufWriter<File>,
        tmp: PathBuf,
        fin: PathBuf,
    },
    Remote {
        rt: tokio::runtime::Handle,
        store: Arc<dyn ObjectStore>,
        path: ObjPath,
        buf: Vec<u8>,
        upload: Option<WriteMultipart>,
        part_size: usize,
        parts_in_flight: usize,
    },
    Done,
}

/// A temporary name beside `name` that no other writer, in this process or another, uses:
/// `.<name>.<pid>-<n>.partial`. Leftovers of a killed job end in `.partial`, which is what
/// `--resume` and `--append` clear.
pub fn temporary_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.{}-{n}.{PARTIAL}", std::process::id())
}

/// The extension of every temporary file.
pub const PARTIAL: &str = "partial";

/// Whether a file name is one of [`temporary_name`]'s: the debris of a writer that was
/// killed, never part of a dataset.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(&format!(".{PARTIAL}"))
}

fn io_err(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl ObjectWriter {
    pub(super) fn local(fin: &Path) -> Result<ObjectWriter, StorageError> {
        let shown = fin.display().to_string();
        let dir = fin.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("write", &dir.display(), &e))?;
        let name = fin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(temporary_name(&name));
        // created exclusively: a name another writer holds is never opened a second time
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StorageError::io("write", &tmp.display(), &e))?;
        Ok(ObjectWriter {
            shown,
            bytes: 0,
            state: State::Local {
                file: BufWriter::with_capacity(1 << 20, f),
                tmp,
                fin: fin.to_path_buf(),
            },
        })
    }

    pub(super) fn remote(
        rt: tokio::runtime::Handle,
        store: Arc<dyn ObjectStore>,
        path: ObjPath,
        shown: String,
        part_size: usize,
        parts_in_flight: usize,
    ) -> ObjectWriter {
        ObjectWriter {
            shown,
            bytes: 0,
            state: State::Remote {
                rt,
                store,
                path,
                buf: Vec::new(),
                upload: None,
                part_size: part_size.max(5 << 20),
                parts_in_flight: parts_in_flight.max(1),
            },
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Publishes the file or object; returns its size. On failure nothing is published and a
    /// multipart upload is aborted.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        let shown = self.shown.clone();
        let fail = |e: &dyn std::fmt::Display| StorageError::other("write", &shown, e.to_string());
        match std::mem::replace(&mut self.state, State::Done) {
            State::Local { file, tmp, fin } => {
                let f = match file.into_inner() {
                    Ok(f) => f,
                    Err(e) => {
                        let err = StorageError::io("write", &tmp.display(), e.error());
                        drop(e);
                        let _ = std::fs::remove_file(&tmp);
                        return Err(err);
                    }
                };
                let done = f
                    .sync_all()
                    .map_err(|e| StorageError::io("write", &tmp.display(), &e))
                    .and_then(|_| {
                        std::fs::rename(&tmp, &fin)
                            .map_err(|e| StorageError::io("write", &fin.display(), &e))
                    });
                if done.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                done?;
            }
            State::Remote {
                rt,
                store,
                path,
                buf,
                upload,
                ..
            } => match upload {
                None => {
                    rt.block_on(store.put(&path, PutPayload::from(buf)))
                        .map_err(|e| fail(&e))?;
                }
                Some(w) => {
                    // WriteMultipart::finish aborts the upload itself when a part or the
                    // completion fails
                    rt.block_on(w.finish()).map_err(|e| fail(&e))?;
                }
            },
            State::Done => {}
        }
        Ok(self.bytes)
    }

    /// Abandons the file or object: removes the temporary file, aborts the upload.
    pub fn abort(mut self) {
        self.abort_in_place();
    }

    fn abort_in_place(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Local { file, tmp, .. } => {
                drop(file);
                let _ = std::fs::remove_file(&tmp);
            }
            State::Remote {
                rt,
                upload: Some(w),
                ..
            } => {
                if let Err(e) = rt.block_on(w.abort()) {
                    tracing::warn!("cannot abort the upload of {}: {e}", self.shown);
                }
            }
            State::Remote { upload: None, .. } | State::Done => {}
        }
    }
}

/// Starts a multipart upload. object_store does not retry its POST after a connection reset
/// (the request is not idempotent), so it is retried here: at worst the server keeps an extra
/// empty upload, which holds no data.
fn create_upload(
    rt: &tokio::runtime::Handle,
    store: &Arc<dyn ObjectStore>,
    path: &ObjPath,
) -> Result<Box<dyn object_store::MultipartUpload>, object_store::Error> {
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        match rt.block_on(store.put_multipart(path)) {
            Ok(up) => return Ok(up),
            Err(e) if attempt < 3 && !matches!(e, object_store::Error::NotFound { .. }) => {
                tracing::warn!("starting the upload of {path} failed, retrying: {e}");
                std::thread::sleep(delay);
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.state {
            State::Local { file, .. } => {
                let n = file.write(data)?;
                self.bytes += n as u64;
                Ok(n)
            }
            State::Remote {
                rt,
                store,
                path,
                buf,
                upload,
                part_size,
                parts_in_flight,
            } => {
                match upload {
                    None => {
                        buf.extend_from_slice(data);
                        if buf.len() >= *part_size {
                            let up = create_upload(rt, store, path).map_err(io_err)?;
                            let mut w = WriteMultipart::new_with_chunk_size(up, *part_size);
                            {
                                // parts are spawned onto the I/O runtime
                                let _g = rt.enter();
                                w.write(buf);
                            }
                            *buf = Vec::new();
                            let waited = rt.block_on(w.wait_for_capacity(*parts_in_flight));
                            *upload = Some(w);
                            waited.map_err(io_err)?;
                        }
                    }
                    Some(w) => {
                        {
                            let _g = rt.enter();
                            w.write(data);
                        }
                        rt.block_on(w.wait_for_capacity(*parts_in_flight))
                            .map_err(io_err)?;
                    }
                }
                self.bytes += data.len() as u64;
                Ok(data.len())
            }
            State::Done => Err(std::io::Error::other("writer already finished")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.state {
            State::Local { file, .. } => file.flush(),
            _ => Ok(()),
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        self.abort_in_place();
    }
}

impl super::Storage {
    /// Removes the temporary files a killed job left below `dir` (names ending in
    /// `.partial`); returns how many. Only for a caller that holds the output's lock: no
    /// other writer can own them then. On an object store nothing is left under a final
    /// name (an unfinished multipart upload is invisible; a bucket lifecycle rule expires
    /// it), so there is nothing to do.
    pub fn clear_partials(&self, dir: &super::Location) -> Result<usize, StorageError> {
        let Some(root) = dir.as_local() else {
            return Ok(0);
        };
        let suffix = format!(".{PARTIAL}");
        let mut removed = 0;
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("list", &d.display(), &e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io("list", &d.display(), &e))?;
                let p = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else if entry.file_name().to_string_lossy().ends_with(&suffix) {
                    std::fs::remove_file(&p)
                        .map_err(|e| StorageError::io("remove", &p.display(), &e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod partial_tests {
    use super::*;
    use crate::storage::{Location, Storage, StorageOptions};

    #[test]
    fn temporary_names_are_unique_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let a = temporary_name("000000.tar");
        let b = temporary_name("000000.tar");
        assert_ne!(a, b);
        assert!(
            a.starts_with(".000000.tar.") && a.ends_with(".partial"),
            "{a}"
        );
        std::fs::create_dir_all(dir.path().join("bin/video/part_000000")).unwrap();
        std::fs::write(dir.path().join("bin/video/part_000000").join(&a), b"x").unwrap();
        std::fs::write(dir.path().join("bin/video/part_000000/000000.tar"), b"y").unwrap();
        std::fs::write(dir.path().join(".x.json.partial"), b"z").unwrap();
        let st = Storage::new(StorageOptions::default());
        let loc = Location::Local(dir.path().to_path_buf());
        assert_eq!(st.clear_partials(&loc).unwrap(), 2);
        assert!(dir.path().join("bin/video/part_000000/000000.tar").exists());
        assert_eq!(st.clear_partials(&loc).unwrap(), 0);
    }
}
