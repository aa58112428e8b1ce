//! What flows on the dataflow streams. Every record is `Serialize + Deserialize` so the same
//! streams can cross process boundaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::layout::{PerStream, Stream};

/// A metadata file found by the listing, with its position in the sorted listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFile {
    /// Position in the sorted listing (SPEC §2.1); the clip's global order.
    pub seq: u64,
    /// Path relative to `metas/<version>/`.
    pub rel_path: String,
    /// Size in bytes as listed.
    pub size: u64,
    /// Set when the listing itself failed for this entry (unreadable directory, a name that is
    /// not UTF-8); the entry becomes a reject.
    pub error: Option<String>,
    /// Set on the entry that stands for the rest of a listing that failed midway (the storage
    /// failed: see `ops/list.rs`); `error` says why. Not a file: `read_meta` turns it into
    /// [`MetaOutcome::Failed`], which stops the job instead of planning part of the input.
    #[serde(default)]
    pub failed: bool,
}

/// Why an input was rejected. The `kind` strings are the keys of `counts.rejected` in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RejectKind {
    /// The metadata file could not be read.
    UnreadableMeta,
    /// The metadata file is not JSON (as Python's `json` reads it), or not an object.
    InvalidJson,
    /// A required key is missing.
    MissingKey,
    /// A key has the wrong type or an impossible value.
    WrongType,
    /// `span_uuid` cannot be used as a sample key.
    UnsafeSpanUuid,
    /// `span_uuid` was already used by an earlier file in the listing.
    DuplicateSpanUuid,
    /// The clip named by `clip_location` does not exist.
    ClipMissing,
    /// The clip exists but cannot be read.
    ClipUnreadable,
    /// A window's caption is present but not a string.
    CaptionNotString,
    /// The metadata file is larger than any real one (see `MAX_META_BYTES`).
    MetaTooLarge,
    /// `clip_location` is outside every `--allowed-clip-roots` prefix.
    ClipOutsideAllowedRoots,
    /// The metadata file changed or vanished between planning and writing.
    ChangedDuringJob,
}

impl RejectKind {
    /// Every kind, in declaration order.
    pub const ALL: [RejectKind; 12] = [
        RejectKind::UnreadableMeta,
        RejectKind::InvalidJson,
        RejectKind::MissingKey,
        RejectKind::WrongType,
        RejectKind::UnsafeSpanUuid,
        RejectKind::DuplicateSpanUuid,
        RejectKind::ClipMissing,
        RejectKind::ClipUnreadable,
        RejectKind::CaptionNotString,
        RejectKind::MetaTooLarge,
        RejectKind::ClipOutsideAllowedRoots,
        RejectKind::ChangedDuringJob,
    ];

    /// The stable name used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectKind::UnreadableMeta => "unreadable_meta",
            RejectKind::InvalidJson => "invalid_json",
            RejectKind::MissingKey => "missing_key",
            RejectKind::WrongType => "wrong_type",
            RejectKind::UnsafeSpanUuid => "unsafe_span_uuid",
            RejectKind::DuplicateSpanUuid => "duplicate_span_uuid",
            RejectKind::ClipMissing => "clip_missing",
            RejectKind::ClipUnreadable => "clip_unreadable",
            RejectKind::CaptionNotString => "caption_not_string",
            RejectKind::MetaTooLarge => "meta_too_large",
            RejectKind::ClipOutsideAllowedRoots => "clip_outside_allowed_roots",
            RejectKind::ChangedDuringJob => "changed_during_job",
        }
    }
}

/// One rejected input: a line of `rejects.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    /// The metadata file, relative to `metas/<version>/`.
    pub meta: String,
    /// The sample key, when known.
    pub span_uuid: Option<String>,
    /// Reason class.
    pub kind: RejectKind,
    /// Human-readable message naming the key or file at fault.
    pub message: String,
}

/// Suspicious but valid input, written as the reference writes it and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WarningKind {
    /// `num_bytes` differs from the clip file's real size.
    NumBytesMismatch,
    /// A window has no caption: the clip is written with `valid: false` (SPEC §5).
    MissingCaption,
}

impl WarningKind {
    /// The stable name used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            WarningKind::NumBytesMismatch => "num_bytes_mismatch",
            WarningKind::MissingCaption => "missing_caption",
        }
    }
}

/// A clip whose metadata passed validation.
#[derive(Default, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipMeta {
    /// Position in the sorted listing.
    pub seq: u64,
    /// Metadata path relative to `metas/<version>/`.
    pub rel_path: String,
    /// The sample key.
    pub span_uuid: String,
    /// The bin, or `None` when the clip is dropped for falling in no bin.
    pub bin: Option<String>,
    /// `num_bytes` from the metadata (drives tar grouping).
    pub num_bytes: u64,
    /// Where the clip's bytes are read from (after relative resolution and remapping).
    pub clip_path: String,
    /// One entry per window: its caption, or `None` when the window has none.
    pub captions: Vec<Option<String>>,
    /// The `.json` member: the metadata object re-serialised as Python `json.dumps` writes
    /// it (kept as bytes, not as a parsed tree, so metadata stays small in memory).
    pub json: Vec<u8>,
    /// Warnings raised while reading.
    pub warnings: Vec<WarningKind>,
    /// Hash of the metadata file's bytes: the planner keeps slim records (no `json`, no
    /// `captions`) and the file is read again after planning; the hash proves it is the same.
    pub meta_hash: u64,
    /// The clip file's size as found when planning (`None` when it was not checked).
    #[serde(default)]
    pub clip_size: Option<u64>,
    /// The clip file's change stamp ([`crate::storage::FileStat::stamp`]) when planning; 0
    /// when it was not checked.
    #[serde(default)]
    pub clip_stamp: u64,
    /// Per captioned window, in order, [`caption_hash`] of its caption (kept in slim
    /// records: re-sharding decides from them which embeddings it can reuse).
    #[serde(default)]
    pub caption_hashes: Vec<u64>,
}

/// The identity of a caption's embedding under one model: a hash of the `.strip()`-ed text
/// that is tokenized (SPEC §5).
pub fn caption_hash(caption: &str) -> u64 {
    crate::hash::stable_hash(crate::text::python_strip(caption).as_bytes())
}

/// Where an embedding computed by an earlier version lies: window `window` (among the
/// embedded ones) of sample `key`'s `.pickle` in the `t5_xxl` tar at `tar`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmbeddingRef {
    /// The `t5_xxl` tar (a location string).
    pub tar: String,
    /// The sample key in that tar.
    pub key: String,
    /// Index into the sample's list of arrays.
    pub window: u32,
}

/// A member tar copied from an earlier version instead of written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedTar {
    /// Its size.
    pub size: u64,
    /// Its SHA-256 as the earlier version's record has it (`None` in records written before
    /// checksums were kept): carried into the new record, so the copy is not read for it.
    pub sha256: Option<String>,
}

/// Member tars of a triple that are copied from an earlier version instead of written: per
/// stream, the copied tar.
pub type Copied = PerStream<Option<CopiedTar>>;

/// The result of reading one listed metadata file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaOutcome {
    /// Valid metadata of a clip marked `valid: true`.
    Clip(Box<ClipMeta>),
    /// A clip marked `valid: false` in its metadata: not written.
    Invalid {
        /// Position in the sorted listing.
        seq: u64,
    },
    /// Bad input.
    Reject(Reject),
    /// The storage failed while the file was read or its clip checked (an outage: see
    /// [`crate::storage::ErrorKind::Transient`]). Not the input's fault, so not a reject: the
    /// planner stops the job instead, and `--resume` continues it.
    Failed {
        /// Position in the sorted listing.
        seq: u64,
        /// What failed, naming the file or object.
        message: String,
    },
}

pub use crate::layout::TarId;

/// A clip with its place in the output decided.
#[derive(Default, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedClip {
    /// Global output order: bins by first appearance, then part, tar and position.
    pub rank: u64,
    /// The tar triple the clip goes to.
    pub tar: TarId,
    /// Position within the tar.
    pub index: u32,
    /// Number of clips planned for the tar.
    pub tar_len: u32,
    /// The clip's metadata.
    pub meta: Box<ClipMeta>,
    /// mtime of the clip's tar members (seconds since the epoch), the same for the whole job.
    pub mtime: u64,
    /// Set when the clip cannot be written after all (its metadata changed or vanished
    /// between planning and reading it again): its writer records this reject in its place.
    pub gone: Option<Reject>,
    /// Member tars of the clip's triple copied from an earlier version (re-sharding).
    #[serde(default)]
    pub copied: Copied,
    /// Per captioned window, the earlier embedding to reuse instead of encoding (re-sharding);
    /// empty when every window is encoded.
    #[serde(default)]
    pub reuse: Vec<Option<EmbeddingRef>>,
}

impl PlannedClip {
    /// Whether the clip's `.pickle` is needed at all (its `t5_xxl` tar is not copied).
    pub fn needs_embeddings(&self) -> bool {
        self.copied[Stream::T5Xxl].is_none()
    }

    /// Whether captioned window `i` must be encoded (not reused, pickle needed).
    pub fn encodes_window(&self, i: usize) -> bool {
        self.needs_embeddings() && self.reuse.get(i).is_none_or(Option::is_none)
    }
}

/// A clip ready to be written: its three members except the mp4 bytes, which the writer
/// streams from `clip_path`.
#[derive(Default, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodedSample {
    /// The tar triple.
    pub tar: TarId,
    /// Position within the tar.
    pub index: u32,
    /// Number of clips planned for the tar.
    pub tar_len: u32,
    /// Sample key (`span_uuid`).
    pub key: String,
    /// Metadata file, for reject records.
    pub meta_rel_path: String,
    /// Where to read the mp4 from.
    pub clip_path: String,
    /// The `.json` member.
    pub json: Vec<u8>,
    /// The `.pickle` member; while `reuse` is not empty, only the arrays encoded now.
    pub pickle: Vec<u8>,
    /// Per captioned window, the earlier embedding it takes (`None`: encoded now, in
    /// `pickle`); empty when `pickle` is complete. The writer completes it: all clips of a
    /// tar meet there, so each earlier tar is read by about one worker, not by every one.
    #[serde(default)]
    pub reuse: Vec<Option<EmbeddingRef>>,
    /// Windows embedded for this clip.
    pub windows_embedded: u32,
    /// Tokens embedded for this clip.
    pub tokens_embedded: u64,
    /// mtime of the tar members.
    pub mtime: u64,
    /// The clip is not to be written: this reject takes its place (see [`PlannedClip::gone`]).
    pub gone: Option<Reject>,
    /// Hash of the metadata file (the `.json` member's source).
    #[serde(default)]
    pub meta_hash: u64,
    /// The clip's size when planned.
    #[serde(default)]
    pub clip_size: Option<u64>,
    /// The clip's change stamp when planned.
    #[serde(default)]
    pub clip_stamp: u64,
    /// Caption hashes of the embedded windows.
    #[serde(default)]
    pub caption_hashes: Vec<u64>,
    /// Windows whose embedding was reused from an earlier version.
    #[serde(default)]
    pub windows_reused: u32,
    /// Member tars of the triple copied from an earlier version (not written).
    #[serde(default)]
    pub copied: Copied,
    /// Per window, whether it has a caption: the cosmos-predict2.5 layout's `.pickle` holds
    /// one dict per window, so the writer completing it ([`EncodedSample::reuse`]) must know
    /// where the uncaptioned ones go. Empty in the reference layout.
    #[serde(default)]
    pub captioned: Vec<bool>,
}

/// What a writer reports when it has finished a tar triple.
#[derive(Default, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TarDone {
    /// The tar triple.
    pub tar: TarId,
    /// Samples written into it.
    pub samples: u64,
    /// Bytes of the three tar files together.
    pub bytes: u64,
    /// Windows embedded in the written samples.
    pub windows_embedded: u64,
    /// Tokens embedded in the written samples.
    pub tokens_embedded: u64,
    /// Samples that could not be written (their clip became unreadable).
    pub rejects: Vec<Reject>,
    /// The triple could not be written (storage failure): nothing of it exists, and the job
    /// must not claim completeness.
    pub error: Option<String>,
    /// Completed by an earlier, interrupted run of the job (`--resume`).
    #[serde(default)]
    pub resumed: bool,
    /// Windows whose embedding was reused from an earlier version instead of encoded.
    #[serde(default)]
    pub windows_reused: u64,
    /// Member tars copied from an earlier version (all three: the triple was unchanged).
    #[serde(default)]
    pub files_copied: u8,
    /// Already in the output before this run and kept as it was (`--append`).
    #[serde(default)]
    pub kept: bool,
    /// What the triple holds, for later incremental runs; absent in records of failed
    /// triples.
    #[serde(default)]
    pub contents: Option<TarContents>,
    /// Per member tar, its SHA-256 (lowercase hex), computed while it was written or carried
    /// from the record of the tar it was copied from; `None` in records written before
    /// checksums were kept, and in those of failed triples.
    #[serde(default)]
    pub sha256: PerStream<Option<String>>,
}

/// What a written triple holds: enough to tell, without reading it, whether a later version
/// would write the same bytes, and where each embedding is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarContents {
    /// Sample keys, in order.
    pub keys: Vec<String>,
    /// Content hash of each member tar (the incremental module's `ContentHasher`); a
    /// 3-array in the journal.
    pub hashes: PerStream<u64>,
    /// Size of each member tar.
    pub sizes: PerStream<u64>,
    /// Per sample, the caption hashes of its embedded windows (its `.pickle` arrays).
    pub captions: Vec<Vec<u64>>,
}

impl TarDone {
    /// A triple that could not be written.
    pub fn failed(tar: TarId, error: String) -> TarDone {
        TarDone {
            tar,
            samples: 0,
            bytes: 0,
            windows_embedded: 0,
            tokens_embedded: 0,
            rejects: vec![],
            error: Some(error),
            resumed: false,
            windows_reused: 0,
            files_copied: 0,
            kept: false,
            contents: None,
            sha256: PerStream::default(),
        }
    }
}

/// What the planner decided, besides the clips themselves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Files listed.
    pub listed: u64,
    /// Clips with `valid: false` in their metadata.
    pub invalid: u64,
    /// Clips that fall in no bin.
    pub dropped_no_bin: u64,
    /// Rejected inputs, in listing order.
    pub rejects: Vec<Reject>,
    /// Warnings over the planned clips.
    pub warnings: BTreeMap<WarningKind, u64>,
    /// Bins in order of first appearance, with their tars in order.
    pub bins: Vec<(String, Vec<TarId>)>,
    /// Clips planned for writing.
    pub planned: u64,
    /// Clips left out as semantic duplicates.
    pub removed_semantic_dedup: u64,
    /// Clips of a bin's last tar dropped for holding fewer than `min_clips_per_tar` clips.
    pub dropped_small_tar: u64,
    /// The first storage failure while reading the input ([`MetaOutcome::Failed`]), in
    /// listing order: the plan is incomplete and the job must stop.
    pub failed: Option<String>,
    /// `--append`: samples the output already holds under a key no planned clip of this
    /// listing has (its metadata removed, now rejected, `valid: false` or in no bin). They
    /// stay in their tars but are not counted as written, so every listed file counts once.
    #[serde(default)]
    pub kept_unlisted: u64,
}

/// One bin as written.
#[derive(Clone, Debug, PartialEq)]
pub struct BinWritten {
    /// Bin path.
    pub bin: String,
    /// Tars, relative to `<bin>/video`, sorted.
    pub tars: Vec<String>,
    /// Samples written in the bin.
    pub samples: u64,
}
