//! `write_tar`: writes each tar triple (`video`, `t5_xxl`, `metas`) as samples arrive, in
//! position order, streaming through the storage layer (a `.partial` file renamed into place,
//! or a multipart upload completed) only when the tar is complete — a tar either is whole or
//! does not exist. A sample's clip read starts as soon as the sample arrives, so reads of
//! queued samples overlap with writing.

use std::collections::{BTreeMap, HashMap};

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use crate::dataset::index::{Counting, DaliIndex};
use crate::error::{JobFailure, ShardError};
use crate::formats::npy_pickle::{read_array_list, F16Array};
use crate::formats::predict25;
use crate::hash::Sha256Hashing;
use crate::incremental::reuse::EmbeddingSource;
use crate::incremental::{ContentHasher, SampleFacts};
use crate::job::{JobContext, Milestone};
use crate::layout::{self, PerStream};
use crate::metrics::Metrics;
use crate::record::{Copied, EncodedSample, Reject, RejectKind, TarContents, TarDone, TarId};
use crate::storage::{Fetch, Location, ObjectWriter, Storage};

/// Writes tar triples under a version directory.
pub struct TarWriters {
    output: Storage,
    input: Storage,
    version_dir: Location,
    journal: Option<crate::journal::Journal>,
    dali_index: bool,
    /// How completed `.pickle` members are laid out.
    layout: crate::layout::OutputLayout,
    /// The streams' directory names.
    names: layout::StreamNames,
    reuse: Option<EmbeddingSource>,
    open: HashMap<TarId, OpenTar>,
    failed: std::collections::HashSet<TarId>,
    /// Samples appended to a triple so far (for the live metrics).
    samples_written: u64,
}

/// One member tar being written.
struct PartialTar {
    /// Counted for the DALI index, hashed for the version's `SHA256SUMS`.
    builder: tar::Builder<Counting<Sha256Hashing<ObjectWriter>>>,
    fin: Location,
    /// Its DALI index, built as members are appended (`--index dali`).
    dali: Option<DaliIndex>,
}

struct OpenTar {
    next: u32,
    pending: BTreeMap<u32, (EncodedSample, Option<Fetch>)>,
    /// Per stream, the tar being written; `None` for a member copied from an earlier version.
    files: Option<PerStream<Option<PartialTar>>>,
    /// Member tars copied from an earlier version, with their sizes.
    copied: Copied,
    hasher: ContentHasher,
    contents: TarContents,
    done: TarDone,
}

impl TarWriters {
    /// Writers into `<output>/<version>` through `output`, reading clips through `input`.
    pub fn new(output: Storage, input: Storage, version_dir: Location) -> Self {
        TarWriters {
            output,
            input,
            version_dir,
            journal: None,
            dali_index: false,
            layout: Default::default(),
            names: Default::default(),
            reuse: None,
            open: HashMap::new(),
            failed: Default::default(),
            samples_written: 0,
        }
    }

    /// Writes a DALI index beside every tar, computed while writing (`--index dali`).
    pub fn with_dali_index(mut self, on: bool) -> Self {
        self.dali_index = on;
        self
    }

    /// Lays out completed `.pickle` members as `layout` has them.
    pub fn with_layout(mut self, layout: crate::layout::OutputLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Names the streams' directories as `names` has them.
    pub fn with_names(mut self, names: layout::StreamNames) -> Self {
        self.names = names;
        self
    }

    /// Completes the `.pickle` of samples that reuse earlier embeddings from `source`.
    pub fn with_reuse(mut self, source: EmbeddingSource) -> Self {
        self.reuse = Some(source);
        self
    }

    /// Records every completed triple in `journal` (after its three tars are complete).
    pub fn with_journal(mut self, journal: crate::journal::Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Accepts a sample; writes it and any queued successors. Returns the finished triple when
    /// this sample completed it.
    pub fn push(&mut self, sample: EncodedSample) -> Result<Option<TarDone>, ShardError> {
        let id = sample.tar.clone();
        if self.failed.contains(&id) {
            // the triple already failed and was abandoned
            return Ok(None);
        }
        let result = self.push_inner(sample);
        if result.is_err() {
            // dropping the writers removes partial files and aborts uploads
            self.open.remove(&id);
            self.failed.insert(id);
        }
        result
    }

    fn push_inner(&mut self, sample: EncodedSample) -> Result<Option<TarDone>, ShardError> {
        let id = sample.tar.clone();
        let tar_len = sample.tar_len;
        let copied = &sample.copied;
        let open = self.open.entry(id.clone()).or_insert_with(|| OpenTar {
            next: 0,
            pending: BTreeMap::new(),
            files: None,
            copied: copied.clone(),
            hasher: ContentHasher::default(),
            contents: TarContents::default(),
            done: TarDone {
                tar: id.clone(),
                samples: 0,
                bytes: 0,
                windows_embedded: 0,
                tokens_embedded: 0,
                rejects: vec![],
                error: None,
                resumed: false,
                windows_reused: 0,
                files_copied: copied.values().filter(|c| c.is_some()).count() as u8,
                kept: false,
                contents: None,
                sha256: PerStream::default(),
            },
        });
        open.pending.insert(sample.index, (sample, None));
        loop {
            // start the clip reads of the next few samples, so they overlap with writing
            let window = open.next..open.next.saturating_add(PREFETCH_WINDOW);
            for (_, (s, fetch)) in open.pending.range_mut(window) {
                if fetch.is_none() && open.copied[layout::Stream::Video].is_none() {
                    *fetch = Some(start_fetch(&self.input, s));
                }
            }
            let Some((s, fetch)) = open.pending.remove(&open.next) else {
                break;
            };
            let dir = (&self.version_dir, self.names);
            ensure_files(open, &self.output, dir, &id, self.dali_index)?;
            let fetch = match open.copied[layout::Stream::Video] {
                Some(_) => None,
                None => Some(fetch.unwrap_or_else(|| start_fetch(&self.input, &s))),
            };
            let before = open.done.samples;
            write_sample(open, s, fetch, self.reuse.as_ref(), self.layout)?;
            self.samples_written += open.done.samples - before;
            open.next += 1;
        }
        if open.next < tar_len {
            return Ok(None);
        }
        let mut open = self.open.remove(&id).expect("present");
        let dir = (&self.version_dir, self.names);
        ensure_files(&mut open, &self.output, dir, &id, self.dali_index)?;
        // the three members are finished in order; if one fails, the ones not yet finished
        // are aborted when dropped, and the triple is reported incomplete
        let files = open.files.take().expect("created");
        for (kind, file) in layout::Stream::ALL.into_iter().zip(files) {
            let size = match file {
                Some(PartialTar { builder, fin, dali }) => {
                    let w = builder.into_inner().map_err(|e| write_error(&fin, e))?;
                    let (w, sha256) = w.into_inner().finish();
                    let size = w.finish()?;
                    open.done.sha256[kind] = Some(sha256);
                    // the index appears once its tar is complete
                    if let Some(dali) = dali {
                        let at = layout::idx_location(&fin).map_err(ShardError::InvalidLocation)?;
                        self.output.put(&at, dali.to_text().as_bytes())?;
                    }
                    size
                }
                None => {
                    let c = open.copied[kind]
                        .as_ref()
                        .expect("a member not written is copied");
                    // carried from the earlier version's record; one written before checksums
                    // were kept has none, and the copy is read once for it
                    open.done.sha256[kind] = Some(match &c.sha256 {
                        Some(sha256) => sha256.clone(),
                        None => {
                            let at = self.names.tar_path(&self.version_dir, &id, kind);
                            copied_sha256(&self.output, &at)?
                        }
                    });
                    c.size
                }
            };
            open.contents.sizes[kind] = size;
            open.done.bytes += size;
        }
        open.contents.hashes = open.hasher.finish();
        open.done.contents = Some(std::mem::take(&mut open.contents));
        if let Some(j) = &self.journal {
            j.record_done(&open.done)?;
        }
        Ok(Some(open.done))
    }

    /// Samples appended to a triple so far, those of triples that later failed included
    /// (a rejected sample is not appended).
    pub fn samples_written(&self) -> u64 {
        self.samples_written
    }

    /// Tars still waiting for samples (none once every planned sample has arrived).
    pub fn unfinished(&self) -> Vec<TarId> {
        self.open.keys().cloned().collect()
    }
}

/// Clip reads started ahead of writing, per tar being written: with [`Storage::fetch`]'s
/// limits this bounds the clip bytes in memory (an object store's clips up to
/// `PREFETCH_MAX` are read whole; local files and larger objects stream).
pub const PREFETCH_WINDOW: u32 = 4;

fn start_fetch(input: &Storage, s: &EncodedSample) -> Fetch {
    if s.gone.is_some() {
        return Fetch::failed("read", &s.clip_path, "not to be written".into());
    }
    match Location::parse(&s.clip_path) {
        Ok(clip) => input.fetch(&clip),
        Err(e) => Fetch::failed("read", &s.clip_path, e),
    }
}

/// The SHA-256 of a tar already in the output, read once.
fn copied_sha256(output: &Storage, at: &Location) -> Result<String, ShardError> {
    let r = output.fetch(at).open()?;
    crate::hash::sha256_of(r.reader).map_err(|e| write_error(at, e))
}

fn write_error(fin: &Location, e: std::io::Error) -> ShardError {
    let kind = crate::storage::ErrorKind::of_io(&e);
    ShardError::Storage(crate::storage::StorageError::of_kind(
        "write",
        fin,
        e.to_string(),
        kind,
    ))
}

/// The job's error for a clip that could not be opened because the storage failed (an
/// outage, not the clip): no reject is recorded, the triple is abandoned, and `--resume`
/// writes it once the storage is back.
pub fn clip_outage(
    meta_rel_path: &str,
    e: crate::storage::StorageError,
) -> crate::storage::StorageError {
    crate::storage::StorageError {
        message: format!(
            "{} (the clip of {meta_rel_path}; the storage failed, not the clip: it is not rejected: once the storage is reachable, continue the job with --resume, or an --append by appending again)",
            e.message
        ),
        ..e
    }
}

/// Creates the triple's member tars (those not copied) on its first sample.
/// `dir`: the version's directory and its stream names.
fn ensure_files(
    open: &mut OpenTar,
    output: &Storage,
    dir: (&Location, layout::StreamNames),
    id: &TarId,
    dali: bool,
) -> Result<(), ShardError> {
    if open.files.is_none() {
        open.files = Some(create_files(output, dir, id, &open.copied, dali)?);
    }
    Ok(())
}

fn create_files(
    output: &Storage,
    (version_dir, names): (&Location, layout::StreamNames),
    id: &TarId,
    copied: &Copied,
    dali: bool,
) -> Result<PerStream<Option<PartialTar>>, ShardError> {
    let mut files = PerStream::default();
    for (stream, copied) in copied.iter() {
        if copied.is_some() {
            continue;
        }
        let fin = names.tar_path(version_dir, id, stream);
        files[stream] = Some(PartialTar {
            builder: tar::Builder::new(Counting::new(Sha256Hashing::new(output.writer(&fin)?))),
            fin,
            dali: dali.then(DaliIndex::default),
        });
    }
    Ok(files)
}

/// The whole `.pickle` of a sample: the arrays encoded now, in `s.pickle`, merged in window
/// order with the earlier ones `s.reuse` points at. An earlier array that cannot be read
/// fails the job: the earlier version changed under it.
fn complete_pickle(
    s: &EncodedSample,
    source: Option<&EmbeddingSource>,
    layout: crate::layout::OutputLayout,
) -> Result<Vec<u8>, String> {
    let source = source.ok_or("no earlier version to reuse embeddings from")?;
    let mut new = read_array_list(&s.pickle)
        .map_err(|e| format!("{}: encoded arrays: {e}", s.key))?
        .into_iter();
    let mut arrays: Vec<F16Array> = Vec::with_capacity(s.reuse.len());
    for r in &s.reuse {
        arrays.push(match r {
            Some(r) => source.get(r)?,
            None => new
                .next()
                .ok_or_else(|| format!("{}: fewer encoded arrays than windows", s.key))?,
        });
    }
    if new.next().is_some() {
        return Err(format!("{}: more encoded arrays than windows", s.key));
    }
    predict25::embedding_member(layout, &arrays, &s.captioned)
        .map_err(|e| format!("{}: {e}", s.key))
}

fn write_sample(
    open: &mut OpenTar,
    mut s: EncodedSample,
    fetch: Option<Fetch>,
    reuse: Option<&EmbeddingSource>,
    out_layout: crate::layout::OutputLayout,
) -> Result<(), ShardError> {
    if !s.reuse.is_empty() && open.copied[layout::Stream::T5Xxl].is_none() && s.gone.is_none() {
        s.pickle = complete_pickle(&s, reuse, out_layout).map_err(ShardError::Inconsistent)?;
    }
    let partial = open.copied.values().any(Option::is_some);
    if let Some(reject) = s.gone {
        if partial {
            // the copied members hold the sample: the triple cannot be made consistent
            return Err(ShardError::Inconsistent(format!(
                "{}: {}; its tar triple is partly copied from the earlier version, so it cannot be left out: run the job again",
                reject.meta, reject.message
            )));
        }
        // its metadata changed after planning: the reject takes its place
        open.done.rejects.push(reject);
        return Ok(());
    }
    // open the clip first, so a missing or unreadable one skips the sample in all three tars
    // alike; its bytes then stream into the video tar
    let video = match fetch.map(Fetch::open) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) if e.is_transient() => {
            // an outage is not the clip's fault: the job fails (resumably) instead
            return Err(ShardError::Storage(clip_outage(&s.meta_rel_path, e)));
        }
        Some(Err(e)) => {
            tracing::error!(
                "{}: clip {} became unreadable: {}",
                s.meta_rel_path,
                s.clip_path,
                e.message
            );
            if partial {
                return Err(ShardError::Inconsistent(format!(
                    "{}: clip {} became unreadable ({}); its tar triple is partly copied from the earlier version: run the job again",
                    s.meta_rel_path, s.clip_path, e.message
                )));
            }
            open.done.rejects.push(Reject {
                meta: s.meta_rel_path,
                span_uuid: Some(s.key),
                kind: RejectKind::ClipUnreadable,
                message: format!("clip {}: {}", s.clip_path, e.message),
            });
            return Ok(());
        }
    };
    let clip_size = video.as_ref().map_or(s.clip_size.unwrap_or(0), |v| v.len);
    open.hasher.add(&SampleFacts {
        key: &s.key,
        clip_path: &s.clip_path,
        clip_size,
        clip_stamp: s.clip_stamp,
        meta_hash: s.meta_hash,
        caption_hashes: &s.caption_hashes,
    });
    let files = open.files.as_mut().expect("files created");
    let mut video = video;
    // the mp4 streams from `video`; the other members are in the sample
    let payloads = PerStream::from_fn(|stream| match stream {
        layout::Stream::Video => &[][..],
        layout::Stream::T5Xxl => s.pickle.as_slice(),
        layout::Stream::Metas => s.json.as_slice(),
    });
    for (stream, file) in files.iter_mut() {
        let Some(PartialTar { builder, fin, dali }) = file else {
            continue;
        };
        let data = payloads[stream];
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o444);
        header.set_mtime(s.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        let _ = header.set_username("bigdata");
        let _ = header.set_groupname("bigdata");
        let name = layout::member_name(&s.key, stream);
        let (appended, size) = match (stream, video.take()) {
            (layout::Stream::Video, Some(clip)) => {
                header.set_size(clip.len);
                (
                    builder.append_data(&mut header, &name, clip.reader),
                    clip.len,
                )
            }
            _ => {
                header.set_size(data.len() as u64);
                (
                    builder.append_data(&mut header, &name, data),
                    data.len() as u64,
                )
            }
        };
        appended.map_err(|e| write_error(fin, e))?;
        if let Some(dali) = dali {
            // the data ends padded to a 512-byte block: it started size + padding ago
            let padded = size.div_ceil(512) * 512;
            dali.push(&name, builder.get_ref().count - padded, size);
        }
    }
    open.done.samples += 1;
    open.done.windows_embedded += s.windows_embedded as u64;
    open.done.tokens_embedded += s.tokens_embedded;
    // a copied t5_xxl tar holds the earlier embeddings of all the sample's windows
    open.done.windows_reused += match open.copied[layout::Stream::T5Xxl] {
        Some(_) => s.caption_hashes.len() as u64,
        None => s.windows_reused as u64,
    };
    open.contents.keys.push(s.key);
    open.contents.captions.push(s.caption_hashes);
    Ok(())
}

/// The `write_tar` operator.
pub trait WriteTar<'scope> {
    /// Writes the samples routed to this worker; emits a [`TarDone`] per finished triple.
    /// A write failure (disk full, permissions) stops the job with the error in the
    /// context's failure.
    fn write_tar(self, writers: TarWriters, ctx: &JobContext) -> Stream<'scope, u64, Vec<TarDone>>;
}

impl<'scope> WriteTar<'scope> for Stream<'scope, u64, Vec<EncodedSample>> {
    fn write_tar(
        self,
        mut writers: TarWriters,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<TarDone>> {
        let JobContext {
            clock,
            milestones,
            progress,
            failure,
        } = ctx.clone();
        self.unary(Pipeline, "WriteTar", move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    if failure.is_set() {
                        // the job failed or was interrupted: write nothing more
                        data.clear();
                        return;
                    }
                    let cap: Capability<u64> = cap
                        .retain_least(output.output_index())
                        .expect("u64 is totally ordered");
                    let _t = clock.time("write_tar");
                    let m = &progress.metrics;
                    for sample in data.drain(..) {
                        progress
                            .written
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let tar = sample.tar.clone();
                        let before = writers.samples_written();
                        let pushed = writers.push(sample);
                        Metrics::add(&m.samples_written, writers.samples_written() - before);
                        match pushed {
                            Ok(Some(done)) => {
                                milestones.reach(Milestone::FirstTarCompleted);
                                // as the report counts `tars`: not kept, not copied whole
                                if !done.kept && done.files_copied < 3 {
                                    Metrics::add(&m.tars_completed, 1);
                                }
                                Metrics::add(&m.bytes_written, done.bytes);
                                done.rejects.iter().for_each(|r| m.reject(r.kind));
                                output.session(&cap).give(done)
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::error!("{e}");
                                failure.fail(JobFailure::Write {
                                    tar: tar.clone(),
                                    message: e.to_string(),
                                });
                                // tell worker 0, which may be in another process
                                output
                                    .session(&cap)
                                    .give(TarDone::failed(tar, e.to_string()));
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
