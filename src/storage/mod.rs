//! Storage: local directories and object stores (S3 and S3-compatible stores; GCS and Azure
//! through the same code, untested) behind one blocking interface that the dataflow's
//! operators call. Object stores go through `object_store` on a small tokio runtime shared by
//! the process's workers; local paths use the file system directly, because object_store's
//! `LocalFileSystem` hides names containing `#` (its upload staging marker) and
//! percent-encodes others, which would change the listing the reference sees.
//!
//! Every remote request retries with exponential backoff on throttling (503 SlowDown), other
//! 5xx answers and connection errors (object_store's retry layer), up to
//! [`StorageOptions::max_retries`] times within [`StorageOptions::retry_timeout_s`].

mod aws;
mod copy;
mod fetch;
mod listing;
mod local;
mod location;
mod lock;
mod remote;
mod walk;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};

pub use aws::{read_profile, Profile};
pub use fetch::{ClipReader, Fetch, PREFETCH_MAX, STREAM_CHUNK};
use fetch::{FetchInner, Prefetched};
pub use listing::SortedListing;
use local::{list_local, local_size, local_stat};
pub use location::{Location, Scheme};
pub use lock::{LockError, OutputLock};
use remote::build_store;
pub use writer::{ObjectWriter, PARTIAL};

/// Settings of the storage layer.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageOptions {
    /// S3 profile for the input (metadata and clips); `None`: `$AWS_PROFILE` or `default`.
    pub input_profile: Option<String>,
    /// S3 profile for the output.
    pub output_profile: Option<String>,
    /// Retries of one request before it fails.
    pub max_retries: usize,
    /// Give up retrying a request after this many seconds.
    pub retry_timeout_s: u64,
    /// Concurrent requests per batch of reads (metadata, clip checks, clip prefetch).
    pub read_concurrency: usize,
    /// Multipart upload part size in bytes (at least 5 MiB, S3's minimum).
    pub part_size_bytes: usize,
    /// Parts of one upload in flight at once.
    pub parts_in_flight: usize,
    /// Largest object copied server-side (S3 `CopyObject` takes at most 5 GiB); larger ones
    /// are streamed through this process as a multipart upload.
    pub server_copy_max_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            input_profile: None,
            output_profile: None,
            max_retries: 10,
            retry_timeout_s: 180,
            read_concurrency: 16,
            part_size_bytes: 16 << 20,
            parts_in_flight: 4,
            server_copy_max_bytes: 5 << 30,
        }
    }
}

/// A storage operation that failed, with the location it concerns.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {location}: {message}")]
pub struct StorageError {
    /// What was attempted: `read`, `list`, `write`, ...
    pub op: &'static str,
    /// The file or object.
    pub location: String,
    /// Why.
    pub message: String,
    /// The object or file does not exist (`kind` is [`ErrorKind::NotFound`]).
    pub not_found: bool,
    /// What kind of failure it is: whether the file or object is at fault, or the storage.
    pub kind: ErrorKind,
}

/// The classes of storage failure that decide who is at fault. A clip that is missing,
/// forbidden or not a regular file is bad input (a reject); a [`ErrorKind::Transient`] failure
/// is the storage's (an outage), which must fail the job, resumably, instead of rejecting
/// input that is fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file or object does not exist.
    NotFound,
    /// Access to it was refused (permissions; an object store's 401 or 403).
    Denied,
    /// The storage failed, not the file: connection refused or reset, timeouts, 5xx answers
    /// and throttling after all retries, local I/O errors (EIO, ESTALE, ...).
    Transient,
    /// Anything else: not a regular file, an invalid name or key, an unsupported operation.
    Other,
}

impl ErrorKind {
    /// The class of a local I/O error. A path that cannot name a readable regular file is the
    /// file's fault; an error of the device or file system (EIO, ESTALE, ENOSPC, EMFILE, a
    /// timeout, ...) is transient.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        // ELOOP, a symlink loop (its io::ErrorKind cannot be named on stable Rust)
        const ELOOP: i32 = if cfg!(target_os = "linux") { 40 } else { 62 };
        if e.raw_os_error() == Some(ELOOP) {
            return ErrorKind::Other;
        }
        match e.kind() {
            K::NotFound | K::NotADirectory => ErrorKind::NotFound,
            K::PermissionDenied | K::ReadOnlyFilesystem => ErrorKind::Denied,
            // not a regular file, a name too long, a symlink loop, an invalid path
            K::InvalidInput
            | K::InvalidFilename
            | K::IsADirectory
            | K::InvalidData
            | K::Unsupported => ErrorKind::Other,
            _ => ErrorKind::Transient,
        }
    }

    /// The class of an object store error. Its retry layer has already retried connection
    /// errors, timeouts, throttling and 5xx answers; one that still surfaces as a `Generic`
    /// error holding an HTTP transport error or such a status is an outage.
    pub fn of_object_store(e: &object_store::Error) -> ErrorKind {
        use object_store::Error as E;
        match e {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::Denied,
            E::Generic { .. } if is_transient_http(e) => ErrorKind::Transient,
            E::JoinError { .. } => ErrorKind::Transient,
            _ => ErrorKind::Other,
        }
    }
}

/// Whether an object store error's source chain holds an HTTP transport error (connect,
/// request, timeout, interrupted or unreadable body) or an answer with a status that is
/// retried (5xx, 429 throttling, 408). object_store keeps its retry error private, so the
/// status is read from its message (`Server returned non-2xx status code: 503 ...`).
fn is_transient_http(e: &object_store::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if err
            .downcast_ref::<object_store::client::HttpError>()
            .is_some()
        {
            return true;
        }
        if let Some(code) = status_in(&err.to_string()) {
            if code >= 500 || code == 429 || code == 408 {
                return true;
            }
        }
        current = err.source();
    }
    false
}

/// The HTTP status in object_store's message for a non-2xx answer.
fn status_in(message: &str) -> Option<u16> {
    const MARK: &str = "non-2xx status code: ";
    let at = message.find(MARK)? + MARK.len();
    let digits: String = message[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

impl StorageError {
    fn io(op: &'static str, location: &dyn std::fmt::Display, e: &std::io::Error) -> Self {
        Self::of_kind(op, location, e.to_string(), ErrorKind::of_io(e))
    }

    fn obj(op: &'static str, location: &dyn std::fmt::Display, e: &object_store::Error) -> Self {
        Self::of_kind(op, location, e.to_string(), ErrorKind::of_object_store(e))
    }

    fn other(op: &'static str, location: &dyn std::fmt::Display, message: String) -> Self {
        Self::of_kind(op, location, message, ErrorKind::Other)
    }

    /// An error of `kind`.
    pub fn of_kind(
        op: &'static str,
        location: &dyn std::fmt::Display,
        message: String,
        kind: ErrorKind,
    ) -> Self {
        StorageError {
            op,
            location: location.to_string(),
            message,
            not_found: kind == ErrorKind::NotFound,
            kind,
        }
    }

    /// Whether the storage failed rather than the file or object (see [`ErrorKind`]): the
    /// job must stop instead of rejecting the input.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

/// One entry of [`Storage::list`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// Path relative to the listed directory, `/`-separated.
    pub rel: String,
    /// Size in bytes (0 when unknown).
    pub size: u64,
    /// Why the entry could not be listed properly, if it could not.
    pub error: Option<String>,
}

/// Size and change stamp of a file or object ([`Storage::stat_many`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Changes when the content may have: a hash of a local file's modification time (ns),
    /// of an object's ETag (its last-modified time when it has none).
    pub stamp: u64,
}

/// Whose credentials a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reading metadata and clips.
    Input,
    /// Writing the dataset.
    Output,
}

/// Object stores built so far, one per role, scheme and bucket.
type StoreCache = HashMap<(Role, Scheme, String), Arc<dyn ObjectStore>>;

/// What [`Storage::remote`] resolves a location to.
type Remote<'a> = (Arc<dyn ObjectStore>, &'a tokio::runtime::Runtime, ObjPath);

struct Shared {
    opts: StorageOptions,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
    stores: Mutex<StoreCache>,
    /// Bounds the reads started by [`Storage::fetch`] that are in flight at once.
    fetch_permits: Arc<tokio::sync::Semaphore>,
}

/// A handle on the storage layer with one role's credentials; cheap to clone and shared by
/// every worker of a process.
#[derive(Clone)]
pub struct Storage {
    shared: Arc<Shared>,
    role: Role,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("role", &self.role).finish()
    }
}

impl Storage {
    /// A storage layer with the input role; see [`Storage::with_role`].
    pub fn new(opts: StorageOptions) -> Storage {
        Storage {
            shared: Arc::new(Shared {
                fetch_permits: Arc::new(tokio::sync::Semaphore::new(opts.read_concurrency.max(1))),
                opts,
                runtime: OnceLock::new(),
                stores: Mutex::default(),
            }),
            role: Role::Input,
        }
    }

    /// The same layer acting with `role`'s credentials.
    pub fn with_role(&self, role: Role) -> Storage {
        Storage {
            shared: self.shared.clone(),
            role,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &StorageOptions {
        &self.shared.opts
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, String> {
        self.shared
            .runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("shardflow-io")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the I/O runtime: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The object store holding `bucket`, built once per role and bucket.
    fn store(&self, scheme: Scheme, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let key = (self.role, scheme, bucket.to_string());
        let mut stores = self.shared.stores.lock().expect("not poisoned");
        if let Some(s) = stores.get(&key) {
            return Ok(s.clone());
        }
        let profile = match self.role {
            Role::Input => self.shared.opts.input_profile.as_deref(),
            Role::Output => self.shared.opts.output_profile.as_deref(),
        };
        let store = build_store(scheme, bucket, profile, &self.shared.opts)?;
        stores.insert(key, store.clone());
        Ok(store)
    }

    /// Resolves a remote location to its store, runtime and object path.
    fn remote(&self, op: &'static str, loc: &Location) -> Result<Remote<'_>, StorageError> {
        let Location::Remote {
            scheme,
            bucket,
            key,
        } = loc
        else {
            unreachable!("remote() on a local location")
        };
        let fail = |m: String| StorageError::other(op, loc, m);
        let store = self.store(*scheme, bucket).map_err(fail)?;
        let rt = self.runtime().map_err(fail)?;
        let path = ObjPath::parse(key).map_err(|e| fail(format!("not a valid object key: {e}")))?;
        Ok((store, rt, path))
    }

    /// Checks that the store of `loc` can be set up (credentials, endpoint); no request is made.
    pub fn check(&self, loc: &Location) -> Result<(), StorageError> {
        if loc.is_remote() {
            self.remote("open", loc)?;
        }
        Ok(())
    }

    /// Every file below directory `dir`: an entry that could not be listed (an unreadable
    /// subdirectory, a non-UTF-8 name) carries its error instead of going missing. Unsorted.
    /// A missing directory (for an object store: no object under the prefix) is a
    /// `not_found` error.
    pub fn list(&self, dir: &Location) -> Result<Vec<Listed>, StorageError> {
        match dir {
            Location::Local(p) => list_local(p),
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("list", dir)?;
                let prefix = (!path.as_ref().is_empty()).then_some(&path);
                let strip = if path.as_ref().is_empty() {
                    String::new()
                } else {
                    format!("{}/", path.as_ref())
                };
                let metas: Vec<object_store::ObjectMeta> = rt
                    .block_on(store.list(prefix).try_collect())
                    .map_err(|e| StorageError::obj("list", dir, &e))?;
                if metas.is_empty() {
                    return Err(StorageError::of_kind(
                        "list",
                        dir,
                        "no objects under this prefix".into(),
                        ErrorKind::NotFound,
                    ));
                }
                Ok(metas
                    .into_iter()
                    .map(|m| {
                        let k = m.location.as_ref();
                        Listed {
                            rel: k.strip_prefix(&strip).unwrap_or(k).to_string(),
                            size: m.size,
                            error: None,
                        }
                    })
                    .collect())
            }
        }
    }

    /// True when nothing exists at or below `dir`.
    pub fn is_empty_dir(&self, dir: &Location) -> Result<bool, StorageError> {
        match dir {
            Location::Local(p) => match std::fs::read_dir(p) {
                Ok(mut entries) => Ok(entries.next().is_none()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(StorageError::io("list", &p.display(), &e)),
            },
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("list", dir)?;
                let prefix = (!path.as_ref().is_empty()).then_some(&path);
                let first = rt.block_on(async { store.list(prefix).next().await });
                match first {
                    None => Ok(true),
                    Some(Ok(_)) => Ok(false),
                    Some(Err(e)) => Err(StorageError::obj("list", dir, &e)),
                }
            }
        }
    }

    /// The names of the directories (object-store: common prefixes) directly below `dir`,
    /// sorted; one level only, so an output with millions of tars is not walked.
    pub fn subdirs(&self, dir: &Location) -> Result<Vec<String>, StorageError> {
        let mut names = match dir {
            Location::Local(p) => {
                let entries =
                    std::fs::read_dir(p).map_err(|e| StorageError::io("list", &p.display(), &e))?;
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| StorageError::io("list", &p.display(), &e))?;
                    // follow symlinks, as reading the files does
                    if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                        if let Some(name) = entry.file_name().to_str() {
                            names.push(name.to_owned());
                        }
                    }
                }
                names
            }
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("list", dir)?;
                let prefix = (!path.as_ref().is_empty()).then_some(&path);
                let listed = rt
                    .block_on(store.list_with_delimiter(prefix))
                    .map_err(|e| StorageError::obj("list", dir, &e))?;
                listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_owned))
                    .collect()
            }
        };
        names.sort_unstable();
        Ok(names)
    }

    /// Reads a whole file or object.
    pub fn read(&self, loc: &Location) -> Result<bytes::Bytes, StorageError> {
        match loc {
            Location::Local(p) => local::open_regular(p)
                .and_then(|(mut f, _)| {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut f, &mut buf).map(|_| buf)
                })
                .map(bytes::Bytes::from)
                .map_err(|e| StorageError::io("read", &p.display(), &e)),
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("read", loc)?;
                rt.block_on(async { store.get(&path).await?.bytes().await })
                    .map_err(|e| StorageError::obj("read", loc, &e))
            }
        }
    }

    /// Starts reading a file or object. A remote read starts on the I/O runtime as soon as one
    /// of [`StorageOptions::read_concurrency`] slots is free (so reads overlap with the
    /// caller's work, in bounded number): a HEAD, then the whole object up to
    /// [`PREFETCH_MAX`] bytes; a larger one is streamed in ranges when opened. A local file is
    /// opened and streamed when waited for.
    pub fn fetch(&self, loc: &Location) -> Fetch {
        let inner = match loc {
            Location::Local(p) => FetchInner::Local(p.clone()),
            Location::Remote { .. } => match self.remote("read", loc) {
                Err(e) => FetchInner::Failed(e),
                Ok((store, rt, path)) => {
                    let shown = loc.to_string();
                    let task_loc = shown.clone();
                    let permits = self.shared.fetch_permits.clone();
                    let target = (store.clone(), path.clone());
                    let handle = rt.spawn(async move {
                        let _permit = permits.acquire_owned().await;
                        let got = async {
                            let head = object_store::GetOptions {
                                head: true,
                                ..Default::default()
                            };
                            let size = store.get_opts(&path, head).await?.meta.size;
                            if size > PREFETCH_MAX {
                                return Ok(Prefetched::Large(size));
                            }
                            let opts = object_store::GetOptions::default();
                            let b = store.get_opts(&path, opts).await?.bytes().await?;
                            Ok(Prefetched::Whole(b))
                        }
                        .await;
                        got.map_err(|e| StorageError::obj("read", &task_loc, &e))
                    });
                    FetchInner::Remote(rt.handle().clone(), handle, shown, Some(target))
                }
            },
        };
        Fetch { inner }
    }

    /// [`Storage::read_many`] of files expected to be small: one over `max` bytes is not read
    /// (`Ok(Err(size))`). The size comes from the open file or the GET response's headers, so
    /// the guard holds even where the listing gave no sizes, at no extra request.
    pub fn read_many_max(
        &self,
        locs: &[Location],
        max: u64,
    ) -> Vec<Result<Result<bytes::Bytes, u64>, StorageError>> {
        self.many(
            locs,
            |_, l| {
                let p = l.as_local().expect("a local location");
                let shown = p.display();
                let (mut f, meta) =
                    local::open_regular(p).map_err(|e| StorageError::io("read", &shown, &e))?;
                let size = meta.len();
                if size > max {
                    return Ok(Err(size));
                }
                // read at most max + 1 bytes: a file growing meanwhile is still caught
                let mut b = Vec::with_capacity(size as usize);
                std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, max + 1), &mut b)
                    .map_err(|e| StorageError::io("read", &shown, &e))?;
                if b.len() as u64 > max {
                    return Ok(Err(b.len() as u64));
                }
                Ok(Ok(bytes::Bytes::from(b)))
            },
            move |store, path| async move {
                let got = store.get(&path).await?;
                if got.meta.size > max {
                    // dropping the response ends the transfer
                    return Ok(Err(got.meta.size));
                }
                got.bytes().await.map(Ok)
            },
            "read",
        )
    }

    /// Reads many files, at most [`StorageOptions::read_concurrency`] requests at once for
    /// object stores; results in input order.
    pub fn read_many(&self, locs: &[Location]) -> Vec<Result<bytes::Bytes, StorageError>> {
        self.many(
            locs,
            |s, l| s.read(l),
            |store, path| async move { store.get(&path).await?.bytes().await },
            "read",
        )
    }

    /// Size of a regular, readable file or an object (a HEAD request).
    pub fn size(&self, loc: &Location) -> Result<u64, StorageError> {
        match loc {
            Location::Local(p) => local_size(p),
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("stat", loc)?;
                rt.block_on(store.head(&path))
                    .map(|m| m.size)
                    .map_err(|e| StorageError::obj("stat", loc, &e))
            }
        }
    }

    /// Removes a file or an object; one that does not exist is no error.
    pub fn delete(&self, loc: &Location) -> Result<(), StorageError> {
        match loc {
            Location::Local(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StorageError::io("delete", loc, &e))
                }
                _ => Ok(()),
            },
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("delete", loc)?;
                match rt.block_on(store.delete(&path)) {
                    Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
                    Err(e) => Err(StorageError::obj("delete", loc, &e)),
                }
            }
        }
    }

    /// [`Storage::size`] of many locations, concurrently for object stores.
    pub fn size_many(&self, locs: &[Location]) -> Vec<Result<u64, StorageError>> {
        self.many(
            locs,
            |s, l| s.size(l),
            |store, path| async move { store.head(&path).await.map(|m| m.size) },
            "stat",
        )
    }

    /// Size and change stamp of many readable files or objects, concurrently for object
    /// stores (one HEAD each).
    pub fn stat_many(&self, locs: &[Location]) -> Vec<Result<FileStat, StorageError>> {
        self.many(
            locs,
            |_, l| local_stat(l.as_local().expect("a local location")),
            |store, path| async move {
                store.head(&path).await.map(|m| {
                    let tag = m
                        .e_tag
                        .unwrap_or_else(|| m.last_modified.to_rfc3339())
                        .into_bytes();
                    FileStat {
                        size: m.size,
                        stamp: crate::hash::stable_hash(&tag),
                    }
                })
            },
            "stat",
        )
    }

    fn many<T, F, Fut>(
        &self,
        locs: &[Location],
        local: impl Fn(&Storage, &Location) -> Result<T, StorageError>,
        remote: F,
        op: &'static str,
    ) -> Vec<Result<T, StorageError>>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ObjectStore>, ObjPath) -> Fut,
        Fut: std::future::Future<Output = Result<T, object_store::Error>>,
    {
        if !locs.iter().any(Location::is_remote) {
            return locs.iter().map(|l| local(self, l)).collect();
        }
        let rt = match self.runtime() {
            Ok(rt) => rt,
            Err(m) => {
                return locs
                    .iter()
                    .map(|l| match l {
                        Location::Local(_) => local(self, l),
                        Location::Remote { .. } => Err(StorageError::other(op, l, m.clone())),
                    })
                    .collect()
            }
        };
        let futs = locs.iter().map(|l| {
            let (ready, fut) = match l {
                Location::Local(_) => (Some(local(self, l)), None),
                Location::Remote { .. } => match self.remote(op, l) {
                    Ok((store, _, path)) => (None, Some(remote(store, path))),
                    Err(e) => (Some(Err(e)), None),
                },
            };
            async move {
                match (ready, fut) {
                    (Some(r), _) => r,
                    (None, Some(f)) => f.await.map_err(|e| StorageError::obj(op, l, &e)),
                    (None, None) => unreachable!("one of the two is set"),
                }
            }
        });
        rt.block_on(
            stream::iter(futs)
                .buffered(self.shared.opts.read_concurrency.max(1))
                .collect(),
        )
    }

    /// Writes a whole small file or object atomically (temporary name + rename locally; a
    /// single PUT remotely).
    pub fn put(&self, loc: &Location, bytes: &[u8]) -> Result<(), StorageError> {
        let mut w = self.writer(loc)?;
        std::io::Write::write_all(&mut w, bytes).map_err(|e| StorageError::io("write", loc, &e))?;
        w.finish().map(|_| ())
    }

    /// A streaming writer for `loc`; nothing appears at `loc` until
    /// [`ObjectWriter::finish`] succeeds.
    pub fn writer(&self, loc: &Location) -> Result<ObjectWriter, StorageError> {
        match loc {
            Location::Local(p) => ObjectWriter::local(p),
            Location::Remote { .. } => {
                let (store, rt, path) = self.remote("write", loc)?;
                Ok(ObjectWriter::remote(
                    rt.handle().clone(),
                    store,
                    path,
                    loc.to_string(),
                    self.shared.opts.part_size_bytes,
                    self.shared.opts.parts_in_flight,
                ))
            }
        }
    }
}

#[cfg(test)]
impl Storage {
    /// Test support: serves `s3://<bucket>` from `store`, for both roles.
    pub(crate) fn serve_bucket(&self, bucket: &str, store: Arc<dyn ObjectStore>) {
        for role in [Role::Input, Role::Output] {
            self.shared
                .stores
                .lock()
                .expect("not poisoned")
                .insert((role, Scheme::S3, bucket.to_string()), store.clone());
        }
    }

    /// Test support: serves `s3://<bucket>` from an S3 endpoint on a loopback port that
    /// refuses connections (bound, then closed), with one quick retry: every request fails
    /// the way an outage does. Nothing is sent beyond 127.0.0.1.
    pub(crate) fn serve_unreachable_bucket(&self, bucket: &str) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a loopback port")
            .port();
        self.serve_bucket(bucket, Arc::new(loopback_s3(bucket, port)));
    }
}

/// Test support: an S3 store of `bucket` at `http://127.0.0.1:<port>` with test keys and one
/// quick retry, so a failing endpoint fails a test in milliseconds.
#[cfg(test)]
pub(crate) fn loopback_s3(bucket: &str, port: u16) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: std::time::Duration::from_millis(10),
                max_backoff: std::time::Duration::from_millis(20),
                base: 2.0,
            },
            max_retries: 1,
            retry_timeout: std::time::Duration::from_secs(2),
        })
        .build()
        .expect("an S3 store")
}

#[cfg(test)]
mod tests;
