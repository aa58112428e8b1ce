//! The job journal under `<output>/<version>/_shardflow/`, which makes a job resumable:
//!
//! - `job.json`: the job's fingerprint — the options that change the output, the model's
//!   identity and the tar mtime — written before any tar is written. The one-step plan of
//!   `reshard` and `--append` adds a hash of the plan (`inputs`); the streaming plan of a
//!   `shard` needs none.
//! - `done/<bin>/<part>/<tar>.json`: one record per completed tar triple, written by its
//!   writer after all three tars are complete (renamed, or upload completed), with the keys of
//!   its clips in order and a content hash per stream.
//!
//! `--resume` keeps the triples with a record whose three tars still exist with the recorded
//! size and whose clips are the ones the plan puts there now, and redoes the rest; the tar
//! mtime comes from `job.json`, so the result is byte for byte what an uninterrupted run
//! writes. A tar written but not yet recorded when the job died is simply written again.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ShardConfig;
use crate::error::ShardError;
use crate::layout::{Stream, StreamNames};
use crate::model::ModelError;
pub use crate::model::ModelFingerprint;
use crate::record::{PlanSummary, PlannedClip, TarDone, TarId};
use crate::storage::{Location, Storage, StorageError};

/// Name of the job's own folder under `<output>/<version>`.
pub const JOB_DIR: &str = "_shardflow";

/// The output lock a running job holds, below [`JOB_DIR`] (see [`crate::storage::OutputLock`]).
pub const LOCK_FILE: &str = "lock";

/// Version of the journal's format.
pub const FORMAT: u32 = 1;

/// What identifies a job's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobFingerprint {
    /// Journal format.
    pub format: u32,
    /// mtime of every tar member (seconds since the epoch).
    pub mtime: u64,
    /// The options that change the output, by name.
    pub options: BTreeMap<String, serde_json::Value>,
    /// The text encoder's model.
    pub model: ModelFingerprint,
    /// The plan; absent until planning finished.
    pub inputs: Option<InputsFingerprint>,
}

/// The plan's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputsFingerprint {
    /// Metadata files listed.
    pub listed: u64,
    /// Clips planned.
    pub planned: u64,
    /// SHA-256 over every planned clip (tar, position, key, hash of its metadata file, clip
    /// location) and the listing's rejects and counts.
    pub sha256: String,
}

/// The options of `cfg` that change the output.
pub fn options_of(cfg: &ShardConfig) -> BTreeMap<String, serde_json::Value> {
    use serde_json::json;
    let device = match cfg.device {
        crate::model::DeviceSpec::Cpu => "cpu",
        _ => "cuda",
    };
    let mut options = BTreeMap::from([
        ("annotation_version".into(), json!(cfg.version)),
        ("target_tar_size_mb".into(), json!(cfg.target_tar_size_mb)),
        ("max_tars_per_part".into(), json!(cfg.max_tars_per_part)),
        (
            "captioning_algorithm".into(),
            json!(cfg.captioning_algorithm),
        ),
        ("t5_dtype".into(), json!(format!("{:?}", cfg.precision))),
        ("device".into(), json!(device)),
    ]);
    // options added later appear only when set, so journals written before them still match
    if cfg.bins != crate::spec::BinSpec::Frames {
        options.insert("bin_spec".into(), json!(cfg.bins.name()));
        options.insert(
            "bins".into(),
            serde_json::to_value(cfg.bins.table()).expect("serialises"),
        );
    }
    if cfg.listing != crate::config::Listing::Scan {
        options.insert("listing".into(), json!("summary"));
    }
    if let Some(d) = &cfg.semantic_dedup {
        options.insert("input_semantic_dedup_path".into(), json!(d.path));
        options.insert("semantic_dedup_epsilon".into(), json!(d.epsilon));
    }
    if cfg.index != crate::config::Indexes::default() {
        options.insert(
            "index".into(),
            json!({"dali": cfg.index.dali, "wids": cfg.index.wids}),
        );
    }
    if cfg.layout != crate::layout::OutputLayout::Reference {
        // a dataset is written in one layout: resuming, appending to or re-sharding from one
        // written in another is refused as any other option change
        options.insert("layout".into(), json!(cfg.layout.name()));
    }
    if cfg.names != StreamNames::REFERENCE {
        // where the embedding tars lie: a re-shard or an append reads its base's from here
        options.insert("embedding_stream".into(), json!(cfg.names.embedding.name()));
    }
    if cfg.drop_small_shards {
        options.insert("drop_small_shards".into(), json!(true));
        options.insert("min_clips_per_tar".into(), json!(cfg.min_clips_per_tar));
    }
    options
}

/// The stream names of a dataset written with `options` (a job record's; see
/// [`options_of`]); `None` when they name an embedding stream this build does not know.
pub fn stream_names_of(options: &BTreeMap<String, serde_json::Value>) -> Option<StreamNames> {
    match options.get("embedding_stream") {
        None => Some(StreamNames::REFERENCE),
        Some(v) => v.as_str().and_then(StreamNames::with_embedding),
    }
}

/// Fingerprints a model directory (see [`ModelFingerprint::of_dir`]), before the model is
/// loaded: a loaded encoder reports the same ([`crate::model::TextEncoder::fingerprint`]).
pub fn model_fingerprint(dir: &Path) -> Result<ModelFingerprint, ShardError> {
    ModelFingerprint::of_dir(dir).map_err(|e| match e {
        // reported as every other file the job cannot read
        ModelError::Io { path, source } => ShardError::io(path, source),
        e => ShardError::Model(e),
    })
}

/// Fingerprints a plan: everything that reaches the output.
pub fn inputs_fingerprint(planned: &[PlannedClip], summary: &PlanSummary) -> InputsFingerprint {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for c in planned {
        field(c.tar.bin.as_bytes());
        field(&c.tar.part.to_le_bytes());
        field(&c.tar.tar.to_le_bytes());
        field(&c.index.to_le_bytes());
        field(c.meta.span_uuid.as_bytes());
        // the metadata file's bytes (captions and `.json` member included), by their hash:
        // the planner holds slim records
        field(&c.meta.meta_hash.to_le_bytes());
        field(c.meta.clip_path.as_bytes());
    }
    for r in &summary.rejects {
        field(r.meta.as_bytes());
        field(r.kind.as_str().as_bytes());
    }
    field(&summary.invalid.to_le_bytes());
    field(&summary.dropped_no_bin.to_le_bytes());
    InputsFingerprint {
        listed: summary.listed,
        planned: summary.planned,
        sha256: hex(&h.finalize()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What differs between the journal's fingerprint and this run's, one line per difference
/// (options and model; the inputs are compared once planned).
pub fn differences(old: &JobFingerprint, new: &JobFingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if old.format != new.format {
        out.push(format!(
            "journal format {} (this version writes {})",
            old.format, new.format
        ));
    }
    let keys: std::collections::BTreeSet<&String> =
        old.options.keys().chain(new.options.keys()).collect();
    for k in keys {
        let (a, b) = (old.options.get(k), new.options.get(k));
        if a != b {
            let show = |v: Option<&serde_json::Value>| match v {
                Some(v) => v.to_string(),
                // left out of the journal when it is the default (see `options_of`)
                None if k == "layout" => {
                    format!("{:?}", crate::layout::OutputLayout::Reference.name())
                }
                None if k == "embedding_stream" => {
                    format!("{:?}", StreamNames::REFERENCE.embedding.name())
                }
                None => "unset".into(),
            };
            out.push(format!("{k}: {} before, {} now", show(a), show(b)));
        }
    }
    if old.model != new.model {
        out.push(format!(
            "the T5 model differs (config/tokenizer sha256 {} before, {} now; weights {:?} before, {:?} now)",
            short(&old.model.sha256),
            short(&new.model.sha256),
            old.model.weights,
            new.model.weights
        ));
    }
    out
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Reads and writes the journal of one output version.
#[derive(Clone, Debug)]
pub struct Journal {
    storage: Storage,
    dir: Location,
    version_dir: Location,
    names: StreamNames,
}

impl Journal {
    /// The journal of `<version_dir>/_shardflow`, accessed with `storage` (output role), of a
    /// dataset with the reference's stream names.
    pub fn new(storage: Storage, version_dir: Location) -> Journal {
        Journal {
            storage,
            dir: version_dir.join(JOB_DIR),
            version_dir,
            names: StreamNames::REFERENCE,
        }
    }

    /// The same journal, of a dataset whose streams are called `names` (where its records'
    /// tars lie).
    pub fn with_names(self, names: StreamNames) -> Journal {
        Journal { names, ..self }
    }

    /// The dataset's stream names.
    pub fn names(&self) -> StreamNames {
        self.names
    }

    /// `_shardflow` itself.
    pub fn dir(&self) -> &Location {
        &self.dir
    }

    /// The version directory it belongs to.
    pub fn version_dir(&self) -> &Location {
        &self.version_dir
    }

    /// The storage it is read and written through.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Reads `job.json`, if there is one.
    pub fn read_job(&self) -> Result<Option<JobFingerprint>, ShardError> {
        let loc = self.dir.join("job.json");
        match self.storage.read(&loc) {
            Ok(b) => {
                serde_json::from_slice(&b)
                    .map(Some)
                    .map_err(|cause| ShardError::CorruptJournal {
                        location: loc.to_string(),
                        cause,
                    })
            }
            Err(e) if e.not_found => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `job.json` (atomically).
    pub fn write_job(&self, job: &JobFingerprint) -> Result<(), ShardError> {
        let text = serde_json::to_string_pretty(job).expect("serialises");
        Ok(self
            .storage
            .put(&self.dir.join("job.json"), format!("{text}\n").as_bytes())?)
    }

    fn done_location(&self, tar: &TarId) -> Location {
        self.dir.join(&format!(
            "done/{}/part_{:06}/{:06}.json",
            tar.bin, tar.part, tar.tar
        ))
    }

    /// Removes a recorded triple that today's plan no longer has (a `--resume` whose inputs
    /// changed): its tars and DALI indexes, then its record. Parts already gone are no error.
    pub fn remove_triple(&self, tar: &TarId) -> Result<(), StorageError> {
        for stream in Stream::ALL {
            let rel = tar.rel_path();
            for file in [rel.clone(), crate::layout::idx_path(&rel)] {
                let loc = self
                    .version_dir
                    .join(&self.names.tar_rel(&tar.bin, stream, &file));
                self.storage.delete(&loc)?;
            }
        }
        self.storage.delete(&self.done_location(tar))
    }

    /// Removes the report an earlier run left (`report.json`), before a resumed job writes
    /// anything: a resume may rewrite and remove tars, and one killed midway would otherwise
    /// leave them under an earlier run's successful report, which the dataset tools take for
    /// a finished dataset. The job writes its own report when it ends.
    pub fn retract_report(&self) -> Result<(), StorageError> {
        self.storage.delete(&self.dir.join("report.json"))
    }

    /// Records a completed triple.
    pub fn record_done(&self, done: &TarDone) -> Result<(), StorageError> {
        let text = serde_json::to_string(done).expect("serialises");
        self.storage
            .put(&self.done_location(&done.tar), text.as_bytes())
    }

    /// The completed triples whose tars still exist with their recorded total size. Records
    /// that cannot be read, or whose tars are gone or changed, are left out (redone).
    pub fn load_done(&self) -> Result<Vec<TarDone>, ShardError> {
        let dir = self.dir.join("done");
        let listed = match self.storage.list(&dir) {
            Ok(l) => l,
            Err(e) if e.not_found => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let locs: Vec<Location> = listed
            .iter()
            .filter(|l| l.error.is_none())
            .map(|l| dir.join(&l.rel))
            .collect();
        let mut records = Vec::new();
        for (loc, bytes) in locs.iter().zip(self.storage.read_many(&locs)) {
            match bytes
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<TarDone>(&b).map_err(|e| e.to_string()))
            {
                Ok(d) if d.error.is_none() => records.push(d),
                Ok(_) => {}
                Err(e) => tracing::warn!("{loc}: unusable completion record, redoing its tar: {e}"),
            }
        }
        let tars: Vec<Location> = records
            .iter()
            .flat_map(|d| Stream::ALL.map(|s| self.names.tar_path(&self.version_dir, &d.tar, s)))
            .collect();
        let sizes = self.storage.size_many(&tars);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (d, sizes) in records.into_iter().zip(sizes.chunks(Stream::ALL.len())) {
            let total: Option<u64> = sizes.iter().map(|s| s.as_ref().ok().copied()).sum();
            if total == Some(d.bytes) && seen.insert(d.tar.clone()) {
                out.push(d);
            } else {
                tracing::warn!(
                    "{}: tar triple missing or changed since it was recorded; writing it again",
                    self.names
                        .tar_path(&self.version_dir, &d.tar, Stream::Video)
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
