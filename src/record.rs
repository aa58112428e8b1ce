//! What flows on the dataflow streams. Every record is `Serialize + Deserialize` so the same
//! streams can cross process boundaries.

use serde::{Deserialize, Serialize};

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

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
}

/// The identity of a tar triple: the key of the exchange in front of the writers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TarId {
    /// Order of the bin's first appearance in the listing.
    pub bin_order: u32,
    /// The bin path, e.g. `resolution_720/aspect_ratio_16_9/frames_0_120`.
    pub bin: String,
    /// Part index.
    pub part: u32,
    /// Tar index within the part.
    pub tar: u32,
}

impl TarId {
    /// `part_{p:06}/{t:06}.tar`.
    pub fn rel_path(&self) -> String {
        crate::spec::tar_rel_path(self.part, self.tar)
    }
}

/// A clip with its place in the output decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// A clip ready to be written: its three members except the mp4 bytes, which the writer
/// streams from `clip_path`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// The `.pickle` member.
    pub pickle: Vec<u8>,
    /// Windows embedded for this clip.
    pub windows_embedded: u32,
    /// Tokens embedded for this clip.
    pub tokens_embedded: u64,
    /// mtime of the tar members.
    pub mtime: u64,
    /// The clip is not to be written: this reject takes its place (see [`PlannedClip::gone`]).
    pub gone: Option<Reject>,
}

/// What a writer reports when it has finished a tar triple.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
        }
    }
}
