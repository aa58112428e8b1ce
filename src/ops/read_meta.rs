//! `read_meta`: read, parse and validate one metadata file (SPEC §1, §2, §9).

use std::path::Path;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::formats::predict25;
use crate::formats::pyjson::{self, PyValue};
use crate::job::JobContext;
use crate::layout::OutputLayout;
use crate::record::{ClipMeta, ListedFile, MetaOutcome, Reject, RejectKind, WarningKind};
use crate::spec::{check_key, BinSpec, ClipDims};
use crate::storage::{FileStat, Location, Storage, StorageError};

/// Reads metadata files and turns each into a [`MetaOutcome`].
#[derive(Clone, Debug)]
pub struct MetaReader {
    /// Reads metadata and checks clips (input credentials).
    pub storage: Storage,
    /// `<input>/metas/<version>`.
    pub meta_dir: Location,
    /// `<input>`: relative `clip_location`s are resolved against it.
    pub input_root: Location,
    /// `clip_location` prefix rewrites, applied first match wins.
    pub remaps: Vec<(String, String)>,
    /// The window key holding the caption, e.g. `qwen_caption`.
    pub caption_field: String,
    /// Binning rules.
    pub bins: BinSpec,
    /// What the `.json` member holds: the metadata as is, or with the keys a trainer reads
    /// added ([`OutputLayout::CosmosPredict25`]).
    pub layout: OutputLayout,
    /// When not empty, a clip must lie under one of these prefixes (local paths, lexically
    /// normalised, or URIs); others are rejected.
    pub allowed_roots: Vec<String>,
    /// Slim records for planning: drop `json` and `captions` (the bulk of a record) after
    /// validating; they are read again once the plan is made ([`crate::ops::reload`]).
    pub slim: bool,
    /// Check that each binned clip exists and compare its size (off when reading again).
    pub check_clips: bool,
}

/// Metadata files above this size are rejected unread: real ones are a few KiB, and a huge
/// one would only cost memory.
pub const MAX_META_BYTES: u64 = 16 << 20;

type Check<T> = Result<T, (RejectKind, String)>;

/// A metadata file parsed and validated, waiting for its clip to be checked.
struct NeedsClip {
    meta: Box<ClipMeta>,
    clip: Location,
    declared: i64,
}

enum Stage {
    Done(MetaOutcome),
    Clip(NeedsClip),
}

impl MetaReader {
    /// Reads and validates one listed file.
    pub fn read(&self, file: &ListedFile) -> MetaOutcome {
        self.read_batch(std::slice::from_ref(file))
            .pop()
            .expect("one outcome per file")
    }

    /// Reads and validates a batch of listed files, one outcome each, in order. Object-store
    /// reads (metadata, then clip checks) run concurrently within the batch.
    pub fn read_batch(&self, files: &[ListedFile]) -> Vec<MetaOutcome> {
        let readable = |f: &ListedFile| !f.failed && f.error.is_none() && f.size <= MAX_META_BYTES;
        let to_read: Vec<Location> = files
            .iter()
            .filter(|f| readable(f))
            .map(|f| self.meta_dir.join(&f.rel_path))
            .collect();
        let mut bytes = self
            .storage
            .read_many_max(&to_read, MAX_META_BYTES)
            .into_iter();
        let too_large = |f: &ListedFile, size: u64| {
            Stage::Done(reject(
                f,
                RejectKind::MetaTooLarge,
                format!(
                    "metadata file is {size} bytes, more than the {} MiB limit",
                    MAX_META_BYTES >> 20
                ),
                None,
            ))
        };
        let stages: Vec<Stage> = files
            .iter()
            .map(|f| {
                if f.failed {
                    // the listing stopped here: the input is incomplete, the job must stop
                    return Stage::Done(MetaOutcome::Failed {
                        seq: f.seq,
                        message: f.error.clone().unwrap_or_default(),
                    });
                }
                if let Some(err) = &f.error {
                    return Stage::Done(reject(f, RejectKind::UnreadableMeta, err.clone(), None));
                }
                if f.size > MAX_META_BYTES {
                    return too_large(f, f.size);
                }
                match bytes.next().expect("one read per file") {
                    Ok(Ok(b)) => self.parse(f, &b),
                    // a listing without sizes (summary.json), or a file grown since listed
                    Ok(Err(size)) => too_large(f, size),
                    Err(e) if e.is_transient() => Stage::Done(MetaOutcome::Failed {
                        seq: f.seq,
                        message: outage(&e),
                    }),
                    Err(e) => Stage::Done(reject(
                        f,
                        RejectKind::UnreadableMeta,
                        format!("cannot read: {}", e.message),
                        None,
                    )),
                }
            })
            .collect();
        let clips: Vec<Location> = stages
            .iter()
            .filter_map(|s| match s {
                Stage::Clip(n) => Some(n.clip.clone()),
                Stage::Done(_) => None,
            })
            .collect();
        let mut stats = self.storage.stat_many(&clips).into_iter();
        stages
            .into_iter()
            .map(|s| match s {
                Stage::Done(o) => o,
                Stage::Clip(n) => finish_clip(n, stats.next().expect("one check per clip")),
            })
            .collect()
    }

    fn parse(&self, file: &ListedFile, bytes: &[u8]) -> Stage {
        let meta_hash = crate::hash::stable_hash(bytes);
        let done = |kind, message: String, uuid: Option<String>| {
            Stage::Done(reject(file, kind, message, uuid))
        };
        let json = match pyjson::parse(bytes) {
            Ok(v) => v,
            Err(e) => {
                return done(
                    RejectKind::InvalidJson,
                    format!("not valid JSON: {e}"),
                    None,
                )
            }
        };
        if !matches!(json, PyValue::Object(_)) {
            let t = json.type_name();
            return done(
                RejectKind::InvalidJson,
                format!("top level is a {t}, not an object"),
                None,
            );
        }
        let uuid = match get_str(&json, "span_uuid") {
            Ok(u) => u,
            Err((k, m)) => return done(k, m, None),
        };
        if let Err(why) = check_key(&uuid) {
            return done(
                RejectKind::UnsafeSpanUuid,
                format!("span_uuid {uuid:?} {why}; it cannot be a sample key"),
                Some(uuid),
            );
        }
        match self.validate(file, json, &uuid, meta_hash) {
            Ok(stage) => stage,
            Err((k, m)) => done(k, m, Some(uuid)),
        }
    }

    fn validate(
        &self,
        file: &ListedFile,
        mut json: PyValue,
        uuid: &str,
        meta_hash: u64,
    ) -> Check<Stage> {
        if !get_bool(&json, "valid")? {
            return Ok(Stage::Done(MetaOutcome::Invalid { seq: file.seq }));
        }
        let width = get_int(&json, "width")?;
        let height = get_int(&json, "height")?;
        let num_frames = get_int(&json, "num_frames")?;
        let num_bytes = get_int(&json, "num_bytes")?;
        let framerate = get_number(&json, "framerate")?;
        if !framerate.is_finite() {
            return Err((
                RejectKind::WrongType,
                format!("key \"framerate\" is {framerate}; it must be a finite number"),
            ));
        }
        if num_frames < 0 {
            return Err((
                RejectKind::WrongType,
                format!("key \"num_frames\" is {num_frames}; it must not be negative"),
            ));
        }
        let clip_location = get_str(&json, "clip_location")?;
        for (key, v) in [("width", width), ("height", height)] {
            if v <= 0 {
                return Err((
                    RejectKind::WrongType,
                    format!("key \"{key}\" is {v}; it must be positive"),
                ));
            }
        }
        if num_bytes < 0 {
            return Err((
                RejectKind::WrongType,
                format!("key \"num_bytes\" is {num_bytes}; it must not be negative"),
            ));
        }
        let captions = self.captions(&json)?;
        let mut warnings = Vec::new();
        let mut clip = Location::parse(&self.resolve_location(&clip_location)).map_err(|e| {
            (
                RejectKind::ClipUnreadable,
                format!("clip_location {clip_location:?}: {e}"),
            )
        })?;
        if !self.allowed(&clip) {
            return Err((
                RejectKind::ClipOutsideAllowedRoots,
                format!(
                    "clip_location {clip_location:?} ({clip}) is outside --allowed-clip-roots {:?}",
                    self.allowed_roots
                ),
            ));
        }
        if let (false, Location::Local(p)) = (self.allowed_roots.is_empty(), &clip) {
            // the clip is read from the real path that was checked: a symlink swapped in
            // later cannot lead the read out of the allowed roots
            clip = Location::Local(real_path(p));
        }
        if captions.iter().any(Option::is_none) {
            // SPEC §5: the reference marks such a clip invalid and still writes it
            json.set("valid", PyValue::Bool(false));
            warnings.push(WarningKind::MissingCaption);
        }
        if self.layout == OutputLayout::CosmosPredict25 {
            // while planning too, so a clip the trainer could not read is rejected up front
            predict25::add_trainer_keys(&mut json, &self.caption_field)
                .map_err(|e| (RejectKind::WrongType, e))?;
        }
        let bin = self.bins.bin_of(&ClipDims {
            width,
            height,
            num_frames,
            framerate,
        });
        let needs_clip = bin.is_some() && self.check_clips;
        let caption_hashes: Vec<u64> = captions
            .iter()
            .flatten()
            .map(|c| crate::record::caption_hash(c))
            .collect();
        let (captions, json) = if self.slim {
            (vec![], vec![])
        } else {
            (captions, pyjson::dumps(&json).into_bytes())
        };
        let meta = Box::new(ClipMeta {
            seq: file.seq,
            rel_path: file.rel_path.clone(),
            span_uuid: uuid.to_string(),
            bin,
            num_bytes: num_bytes as u64,
            clip_path: clip.to_string(),
            captions,
            json,
            warnings,
            meta_hash,
            clip_size: None,
            clip_stamp: 0,
            caption_hashes,
        });
        if needs_clip {
            Ok(Stage::Clip(NeedsClip {
                meta,
                clip,
                declared: num_bytes,
            }))
        } else {
            Ok(Stage::Done(MetaOutcome::Clip(meta)))
        }
    }

    fn captions(&self, json: &PyValue) -> Check<Vec<Option<String>>> {
        let windows = json.get("windows").ok_or_else(|| {
            (
                RejectKind::MissingKey,
                "missing key \"windows\"".to_string(),
            )
        })?;
        let windows = windows.as_array().ok_or_else(|| {
            (
                RejectKind::WrongType,
                format!("key \"windows\" is a {}, not a list", windows.type_name()),
            )
        })?;
        let field = &self.caption_field;
        windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if !matches!(w, PyValue::Object(_)) {
                    return Err((
                        RejectKind::WrongType,
                        format!("windows[{i}] is a {}, not an object", w.type_name()),
                    ));
                }
                match w.get(field) {
                    None => Ok(None),
                    Some(PyValue::Str(s)) => Ok(Some(s.clone())),
                    Some(other) => Err((
                        RejectKind::CaptionNotString,
                        format!(
                            "windows[{i}].{field} is a {}, not a string",
                            other.type_name()
                        ),
                    )),
                }
            })
            .collect()
    }

    /// True when `clip` lies under an allowed root (or no roots are set). Local paths are
    /// compared component-wise as real paths: made absolute, with symlinks, `.` and `..`
    /// resolved (lexically where the path does not exist), so `root/../x` and a symlink in
    /// `root` pointing elsewhere are outside `root`; URIs by prefix at a `/` boundary.
    pub fn allowed(&self, clip: &Location) -> bool {
        if self.allowed_roots.is_empty() {
            return true;
        }
        self.allowed_roots
            .iter()
            .any(|root| match (clip, Location::parse(root)) {
                (Location::Local(p), Ok(Location::Local(r))) => {
                    real_path(p).starts_with(real_path(&r))
                }
                (Location::Remote { .. }, Ok(r @ Location::Remote { .. })) => {
                    let (c, r) = (clip.to_string(), r.to_string());
                    c == r || c.starts_with(&format!("{r}/"))
                }
                _ => false,
            })
    }

    /// Applies the remaps, then resolves a relative location against the input root.
    pub fn resolve_location(&self, loc: &str) -> String {
        let mut loc = loc.to_string();
        if let Some((from, to)) = self
            .remaps
            .iter()
            .find(|(from, _)| loc.starts_with(from.as_str()))
        {
            loc = format!("{to}{}", &loc[from.len()..]);
        }
        if loc.contains("://") || Path::new(&loc).is_absolute() {
            loc
        } else {
            self.input_root.join(&loc).to_string()
        }
    }
}

fn reject(
    file: &ListedFile,
    kind: RejectKind,
    message: String,
    uuid: Option<String>,
) -> MetaOutcome {
    MetaOutcome::Reject(Reject {
        meta: file.rel_path.clone(),
        span_uuid: uuid,
        kind,
        message,
    })
}

/// Completes a clip's outcome with the result of checking that its clip can be read.
fn finish_clip(n: NeedsClip, stat: Result<FileStat, StorageError>) -> MetaOutcome {
    let NeedsClip {
        mut meta,
        clip,
        declared,
    } = n;
    match stat {
        Ok(FileStat { size: real, stamp }) => {
            meta.clip_size = Some(real);
            meta.clip_stamp = stamp;
            if real != declared as u64 {
                meta.warnings.push(WarningKind::NumBytesMismatch);
                tracing::warn!(
                    "{}: num_bytes {declared} differs from the size of {clip} ({real} bytes); grouping uses num_bytes",
                    meta.rel_path
                );
            }
            MetaOutcome::Clip(meta)
        }
        Err(e) if e.is_transient() => MetaOutcome::Failed {
            seq: meta.seq,
            message: format!("{}: {}", meta.rel_path, outage(&e)),
        },
        Err(e) => {
            let kind = if e.not_found {
                RejectKind::ClipMissing
            } else {
                RejectKind::ClipUnreadable
            };
            MetaOutcome::Reject(Reject {
                meta: meta.rel_path,
                span_uuid: Some(meta.span_uuid),
                kind,
                message: format!("clip {clip}: {}", e.message),
            })
        }
    }
}

/// The job's error for a file or clip the storage failed to read (an outage, not the input).
fn outage(e: &StorageError) -> String {
    format!(
        "{e} (the storage failed, not the input: it is not rejected; the job stops: once the storage is reachable, continue it with --resume, or an --append by appending again)"
    )
}

/// The `read_meta` operator.
pub trait ReadMeta<'scope> {
    /// Reads every listed file, spreading files over workers by listing position.
    fn read_meta(
        self,
        reader: MetaReader,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<MetaOutcome>>;
}

impl<'scope> ReadMeta<'scope> for Stream<'scope, u64, Vec<ListedFile>> {
    fn read_meta(
        self,
        reader: MetaReader,
        ctx: &JobContext,
    ) -> Stream<'scope, u64, Vec<MetaOutcome>> {
        let clock = ctx.clock.clone();
        let progress = ctx.progress.clone();
        self.unary(
            Exchange::new(|f: &ListedFile| f.seq),
            "ReadMeta",
            move |_cap, _info| {
                // once the storage failed, the job stops: the rest is not read (each read
                // would only wait out its retries)
                let mut stopped = false;
                move |input, output| {
                    input.for_each(|cap, data| {
                        if stopped {
                            data.clear();
                            return;
                        }
                        let _t = clock.time("read_meta");
                        let out = reader.read_batch(data);
                        stopped = out.iter().any(|o| matches!(o, MetaOutcome::Failed { .. }));
                        for o in &out {
                            if let MetaOutcome::Reject(r) = o {
                                progress.metrics.reject(r.kind);
                            }
                        }
                        output.session(&cap).give_iterator(out.into_iter());
                    });
                }
            },
        )
    }
}

mod fields;
use fields::{get_bool, get_int, get_number, get_str, real_path};

#[cfg(test)]
mod tests;
