//! An exclusive lock on an output directory, so that one job at a time writes it.
//!
//! Locally it is an advisory `flock` on a lock file: the kernel releases it when the process
//! ends, however it ends (SIGKILL included), so a lock is never stale. It holds across
//! processes of one machine, and across machines on network file systems that forward locks
//! (NFSv4, Lustre, GPFS with locking enabled); a file system that cannot lock fails the job
//! before anything is written.
//!
//! On an object store it is a lease: a lock object created with a conditional write
//! (`If-None-Match: *`, which S3 and most S3-compatible stores honour), renewed every
//! [`HEARTBEAT`] with a write conditional on its ETag. A lock object not renewed for [`LEASE`]
//! (by the store's own clock, its last-modified time) belongs to a job that died; it is taken
//! over with a conditional write, so of two jobs taking it over at once one wins. What this
//! cannot guarantee: a job whose renewals fail for longer than [`LEASE`] (an outage, a paused
//! process) loses the lock while it may still write; it logs that it lost it. A store that
//! does not support conditional writes gets no lock, with a warning.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use super::{ErrorKind, Location, Storage, StorageError};

/// How long an object-store lock lives without renewal.
pub const LEASE: Duration = Duration::from_secs(120);
/// How often a held object-store lock is renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another job holds it.
    #[error("{location} is locked: another shardflow job is writing this output ({holder}); wait for it to end, or write to another output")]
    Held {
        /// The lock file or object.
        location: String,
        /// Who holds it, as it recorded itself.
        holder: String,
    },
    /// The lock could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A held lock; released when dropped (or when the process ends, for a local one).
pub struct OutputLock {
    inner: Inner,
}

// the variants are held for their `Drop`, never read
#[allow(dead_code)]
enum Inner {
    /// The open, locked file: closing it releases the lock.
    Local(LocalLock),
    Remote(RemoteLease),
    /// The store cannot lock.
    None,
}

struct RemoteLease {
    stop: Arc<AtomicBool>,
    /// Another job took the lock over: it is not ours to remove.
    lost: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Handle,
    path: object_store::path::Path,
    /// Keeps the I/O runtime `rt` runs on alive until the lock is released.
    _storage: Storage,
}

impl Drop for RemoteLease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        if self.lost.load(Ordering::SeqCst) {
            return;
        }
        let (store, path) = (self.store.clone(), self.path.clone());
        if let Err(e) = self.rt.block_on(async move { store.delete(&path).await }) {
            tracing::warn!("could not remove the lock {}: {e}", self.path);
        }
    }
}

/// A held local lock, and what taking it created.
pub(super) struct LocalLock {
    _file: File,
    path: std::path::PathBuf,
    /// The folders taking the lock created, deepest last.
    created_dirs: Vec<std::path::PathBuf>,
}

/// One try at the local lock: `None` when the file that was locked is no longer the one at
/// `p` (a job discarding its lock removed it in between), to be tried again.
fn lock_local(p: &std::path::Path) -> Result<Option<LocalLock>, LockError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = p.display();
    let mut created_dirs = Vec::new();
    let mut d = p.parent();
    while let Some(dir) = d.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        created_dirs.push(dir.to_path_buf());
        d = dir.parent();
    }
    created_dirs.reverse();
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create", &dir.display(), &e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // a link planted in place of the lock must not lead the truncation below elsewhere
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|e| StorageError::io("lock", &shown, &e))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = Vec::new();
                let _ = Read::by_ref(&mut f).take(4096).read_to_end(&mut text);
                return Err(LockError::Held {
                    location: shown.to_string(),
                    holder: shown_holder(&text),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StorageError::io("lock", &shown, &e).into())
            }
        }
    }
    let same = match (f.metadata(), std::fs::symlink_metadata(p)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if !same {
        return Ok(None);
    }
    let me = holder();
    f.set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| f.write_all(me.as_bytes()))
        .map_err(|e| StorageError::io("lock", &shown, &e))?;
    Ok(Some(LocalLock {
        _file: f,
        path: p.to_path_buf(),
        created_dirs,
    }))
}

impl LocalLock {
    /// Removes the lock file while it is still locked, when the path still names this lock's
    /// file: once removed, another job may create and lock a new one there, which is not ours
    /// to remove. A job that opened ours meanwhile sees, once it holds it, that the path names
    /// another file (or none), and takes that one instead ([`lock_local`]).
    fn remove_file(&self) {
        use std::os::unix::fs::MetadataExt;
        let ours = match (self._file.metadata(), std::fs::symlink_metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for LocalLock {
    /// A finished output holds no lock file: copied as is to an object store, it would read
    /// as a lock object, a job still writing. A killed job leaves its file, unlocked, which
    /// the next job takes.
    fn drop(&mut self) {
        self.remove_file();
    }
}

impl OutputLock {
    /// Releases the lock of a job that refused to run, removing what taking it created (the
    /// lock file, as every release does, and its folders, when they did not exist before
    /// and hold nothing else), so that a refusal leaves no trace. A lock object is removed
    /// in any case.
    pub fn discard(self) {
        if let Inner::Local(l) = &self.inner {
            // before its folders, which must be empty to go
            l.remove_file();
            for d in l.created_dirs.iter().rev() {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
            }
        }
    }

    /// True when a lock object's renewals failed long enough for another job to take it
    /// over: this job may no longer be the output's only writer.
    pub fn lost(&self) -> bool {
        match &self.inner {
            Inner::Remote(r) => r.lost.load(Ordering::SeqCst),
            _ => false,
        }
    }
}

/// Who takes a lock: written into it, shown to a job that finds it taken.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "process {} on {} since unix time {since}",
        std::process::id(),
        host.trim()
    )
}

/// A random number, different in every call (std's per-instance random hash keys).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// What a lock records, shortened and stripped of control characters: it is shown in a message.
fn shown_holder(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.is_empty() {
        "holder unknown".into()
    } else {
        text
    }
}

impl Storage {
    /// Takes the exclusive lock `lock` (a file or object; its folder is created), or fails
    /// with [`LockError::Held`] when another job holds it (after retrying for a second: a
    /// dataset tool checking the lock holds it for an instant).
    pub fn lock(&self, lock: &Location) -> Result<OutputLock, LockError> {
        let inner = match lock {
            Location::Local(p) => {
                let mut attempts = 0;
                loop {
                    match lock_local(p)? {
                        Some(l) => break Inner::Local(l),
                        // the file was removed by a job discarding its lock: take the new one
                        None if attempts < 100 => attempts += 1,
                        None => {
                            return Err(LockError::Held {
                                location: p.display().to_string(),
                                holder: "the lock file keeps being replaced".into(),
                            })
                        }
                    }
                }
            }
            Location::Remote { .. } => self.lock_remote(lock)?,
        };
        Ok(OutputLock { inner })
    }

    fn lock_remote(&self, lock: &Location) -> Result<Inner, LockError> {
        let (store, rt, path) = self.remote("lock", lock)?;
        // unique to this lock: a lock object that holds it is this job's own, written by a
        // request whose answer was lost (a conditional write retried then fails as taken)
        let me = format!("{} (lock {:016x})", holder(), nonce());
        let put = |mode: PutMode| {
            let (store, path, body) = (store.clone(), path.clone(), me.clone());
            rt.block_on(async move {
                let opts = PutOptions {
                    mode,
                    ..PutOptions::default()
                };
                store.put_opts(&path, body.into_bytes().into(), opts).await
            })
        };
        let ours = |r: object_store::PutResult| UpdateVersion {
            e_tag: r.e_tag,
            version: r.version,
        };
        let mut tries = 0;
        let created = loop {
            tries += 1;
            break match put(PutMode::Create) {
                Ok(r) => ours(r),
                Err(object_store::Error::NotImplemented { .. }) => {
                    tracing::warn!(
                    "{lock}: this object store has no conditional writes, so the output is not locked: make sure one job at a time writes it"
                );
                    return Ok(Inner::None);
                }
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => {
                    // taken: by a live job, or by one that died without releasing it
                    let got = rt.block_on(async {
                        let r = store.get(&path).await?;
                        let meta = r.meta.clone();
                        Ok::<_, object_store::Error>((meta, r.bytes().await?))
                    });
                    let (meta, body) = match got {
                        Ok(g) => g,
                        // released between the two requests: try to create it again
                        Err(object_store::Error::NotFound { .. }) if tries < 5 => continue,
                        Err(e) => return Err(StorageError::obj("lock", lock, &e).into()),
                    };
                    if body.as_ref() == me.as_bytes() {
                        // this job's own write: its answer was lost, and the retry found it
                        break UpdateVersion {
                            e_tag: meta.e_tag,
                            version: meta.version,
                        };
                    }
                    let age = SystemTime::now()
                        .duration_since(meta.last_modified.into())
                        .unwrap_or_default();
                    if age <= LEASE {
                        return Err(LockError::Held {
                            location: lock.to_string(),
                            holder: shown_holder(&body),
                        });
                    }
                    let version = UpdateVersion {
                        e_tag: meta.e_tag.clone(),
                        version: meta.version.clone(),
                    };
                    match put(PutMode::Update(version)) {
                        Ok(r) => {
                            tracing::warn!(
                                "{lock}: took over a lock not renewed for {} s ({})",
                                age.as_secs(),
                                shown_holder(&body)
                            );
                            ours(r)
                        }
                        Err(object_store::Error::Precondition { .. }) => {
                            return Err(LockError::Held {
                                location: lock.to_string(),
                                holder: "another job took over a stale lock just now".into(),
                            })
                        }
                        Err(e) => return Err(StorageError::obj("lock", lock, &e).into()),
                    }
                }
                // an outage, or an answer lost: the write may have taken effect, which the
                // next try finds out
                Err(e) if tries < 5 && ErrorKind::of_object_store(&e) == ErrorKind::Transient => {
                    tracing::warn!("{lock}: taking the lock failed, retrying: {e}");
                    std::thread::sleep(Duration::from_millis(200 * tries));
                    continue;
                }
                Err(e) => return Err(StorageError::obj("lock", lock, &e).into()),
            };
        };
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (stop, lost, store, path) =
                (stop.clone(), lost.clone(), store.clone(), path.clone());
            let (rt, shown) = (rt.handle().clone(), lock.to_string());
            let mut version = created;
            std::thread::spawn(move || {
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    if last.elapsed() < HEARTBEAT {
                        continue;
                    }
                    last = std::time::Instant::now();
                    let (store, path, body) = (store.clone(), path.clone(), me.clone());
                    let mode = PutMode::Update(version.clone());
                    let renewed = rt.block_on(async move {
                        let opts = PutOptions {
                            mode,
                            ..PutOptions::default()
                        };
                        store.put_opts(&path, body.into_bytes().into(), opts).await
                    });
                    match renewed {
                        Ok(r) => {
                            version = UpdateVersion {
                                e_tag: r.e_tag,
                                version: r.version,
                            }
                        }
                        Err(object_store::Error::Precondition { .. }) => {
                            lost.store(true, Ordering::SeqCst);
                            tracing::error!("{shown}: lost the output lock to another job (renewals failed for over {} s)", LEASE.as_secs());
                            return;
                        }
                        Err(e) => tracing::warn!("{shown}: could not renew the lock: {e}"),
                    }
                }
            })
        };
        Ok(Inner::Remote(RemoteLease {
            stop,
            lost,
            heartbeat: Some(heartbeat),
            store,
            rt: rt.handle().clone(),
            path,
            _storage: self.clone(),
        }))
    }
}

mod empty;
#[cfg(test)]
mod tests;
