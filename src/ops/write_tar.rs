//! `write_tar`: writes each tar triple (`video`, `t5_xxl`, `metas`) as samples arrive, in
//! position order, streaming to `.partial` files that are renamed into place only when the
//! tar is complete — a tar either is whole or does not exist.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use crate::error::ShardError;
use crate::ops::StageClock;
use crate::record::{EncodedSample, Reject, RejectKind, TarDone, TarId};

/// The three members of a sample, in the order of [`KINDS`].
pub const KINDS: [(&str, &str); 3] = [("video", "mp4"), ("t5_xxl", "pickle"), ("metas", "json")];

/// Writes tar triples under a version directory.
pub struct TarWriters {
    version_dir: PathBuf,
    mtime: u64,
    open: HashMap<TarId, OpenTar>,
}

/// One member tar being written: its builder, temporary path and final path.
struct PartialTar {
    builder: tar::Builder<BufWriter<File>>,
    tmp: PathBuf,
    fin: PathBuf,
}

struct OpenTar {
    next: u32,
    pending: BTreeMap<u32, EncodedSample>,
    files: Option<Vec<PartialTar>>,
    done: TarDone,
}

impl TarWriters {
    /// Writers into `<output>/<version>`; member mtimes are `mtime` (seconds since the epoch).
    pub fn new(version_dir: impl Into<PathBuf>, mtime: u64) -> Self {
        TarWriters {
            version_dir: version_dir.into(),
            mtime,
            open: HashMap::new(),
        }
    }

    /// Final path of one member tar of a triple.
    pub fn tar_path(version_dir: &Path, tar: &TarId, kind: &str) -> PathBuf {
        version_dir.join(&tar.bin).join(kind).join(tar.rel_path())
    }

    /// Accepts a sample; writes it and any queued successors. Returns the finished triple when
    /// this sample completed it.
    pub fn push(&mut self, sample: EncodedSample) -> Result<Option<TarDone>, ShardError> {
        let id = sample.tar.clone();
        let tar_len = sample.tar_len;
        let open = self.open.entry(id.clone()).or_insert_with(|| OpenTar {
            next: 0,
            pending: BTreeMap::new(),
            files: None,
            done: TarDone {
                tar: id.clone(),
                samples: 0,
                bytes: 0,
                windows_embedded: 0,
                tokens_embedded: 0,
                rejects: vec![],
            },
        });
        open.pending.insert(sample.index, sample);
        while let Some(s) = open.pending.remove(&open.next) {
            if open.files.is_none() {
                open.files = Some(create_files(&self.version_dir, &id)?);
            }
            write_sample(open, s, self.mtime)?;
            open.next += 1;
        }
        if open.next < tar_len {
            return Ok(None);
        }
        let mut open = self.open.remove(&id).expect("present");
        if open.files.is_none() {
            open.files = Some(create_files(&self.version_dir, &id)?);
        }
        for PartialTar { builder, tmp, fin } in open.files.take().expect("created") {
            let mut w = builder.into_inner().map_err(|e| ShardError::io(&tmp, e))?;
            w.flush().map_err(|e| ShardError::io(&tmp, e))?;
            let f = w
                .into_inner()
                .map_err(|e| ShardError::io(&tmp, e.into_error()))?;
            f.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
            open.done.bytes += f.metadata().map_err(|e| ShardError::io(&tmp, e))?.len();
            std::fs::rename(&tmp, &fin).map_err(|e| ShardError::io(&fin, e))?;
        }
        Ok(Some(open.done))
    }

    /// Tars still waiting for samples (none once every planned sample has arrived).
    pub fn unfinished(&self) -> Vec<TarId> {
        self.open.keys().cloned().collect()
    }
}

fn create_files(version_dir: &Path, id: &TarId) -> Result<Vec<PartialTar>, ShardError> {
    KINDS
        .iter()
        .map(|(kind, _)| {
            let fin = TarWriters::tar_path(version_dir, id, kind);
            let dir = fin.parent().expect("tar path has a parent");
            std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
            let name = fin.file_name().expect("file name").to_string_lossy();
            let tmp = dir.join(format!(".{name}.partial"));
            let f = File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
            Ok(PartialTar {
                builder: tar::Builder::new(BufWriter::with_capacity(1 << 20, f)),
                tmp,
                fin,
            })
        })
        .collect()
}

fn write_sample(open: &mut OpenTar, s: EncodedSample, mtime: u64) -> Result<(), ShardError> {
    // read the whole clip first, so a failure skips the sample in all three tars alike
    let video = match std::fs::read(&s.clip_path) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(
                "{}: clip {} became unreadable: {e}",
                s.meta_rel_path,
                s.clip_path
            );
            open.done.rejects.push(Reject {
                meta: s.meta_rel_path,
                span_uuid: Some(s.key),
                kind: RejectKind::ClipUnreadable,
                message: format!("clip {}: {e}", s.clip_path),
            });
            return Ok(());
        }
    };
    let files = open.files.as_mut().expect("files created");
    for (PartialTar { builder, tmp, .. }, (data, ext)) in
        files
            .iter_mut()
            .zip([(&video, "mp4"), (&s.pickle, "pickle"), (&s.json, "json")])
    {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o444);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        let _ = header.set_username("bigdata");
        let _ = header.set_groupname("bigdata");
        builder
            .append_data(&mut header, format!("{}.{ext}", s.key), data.as_slice())
            .map_err(|e| ShardError::io(tmp.as_path(), e))?;
    }
    open.done.samples += 1;
    open.done.windows_embedded += s.windows_embedded as u64;
    open.done.tokens_embedded += s.tokens_embedded;
    Ok(())
}

/// The `write_tar` operator.
pub trait WriteTar<'scope> {
    /// Writes the samples routed to this worker; emits a [`TarDone`] per finished triple.
    /// A write failure (disk full, permissions) stops the job with the error in `failure`.
    fn write_tar(
        self,
        writers: TarWriters,
        failure: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        progress: std::sync::Arc<crate::report::Progress>,
        clock: StageClock,
    ) -> Stream<'scope, u64, Vec<TarDone>>;
}

impl<'scope> WriteTar<'scope> for Stream<'scope, u64, Vec<EncodedSample>> {
    fn write_tar(
        self,
        mut writers: TarWriters,
        failure: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        progress: std::sync::Arc<crate::report::Progress>,
        clock: StageClock,
    ) -> Stream<'scope, u64, Vec<TarDone>> {
        self.unary(Pipeline, "WriteTar", move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let cap: Capability<u64> = cap
                        .retain_least(output.output_index())
                        .expect("u64 is totally ordered");
                    let _t = clock.time("write_tar");
                    for sample in data.drain(..) {
                        progress
                            .written
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        match writers.push(sample) {
                            Ok(Some(done)) => output.session(&cap).give(done),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::error!("{e}");
                                failure
                                    .lock()
                                    .expect("not poisoned")
                                    .get_or_insert(e.to_string());
                            }
                        }
                    }
                });
            }
        })
    }
}

#[cfg(test)]
mod tests;
