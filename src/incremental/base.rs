//! The earlier output an incremental run starts from: `<output>/<from-version>` for
//! `reshard`, or `<output>/<version>` itself for `shard --append`. It must be a complete
//! shardflow output (its journal's `report.json` says `ok`) made with the same model and the
//! same options (the annotation version aside, for `reshard`), and its completion records
//! must describe their contents (written by shardflow 0.1 with content records).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{BaseRefusal, ShardError};
use crate::journal::{differences, JobFingerprint, Journal};
use crate::layout::Stream;
use crate::record::TarDone;
use crate::storage::{Location, Storage};

use super::{OldVersion, TripleKey};

/// Where an earlier embedding is: record, sample and window indexes (12 bytes, where an
/// [`crate::record::EmbeddingRef`] holds two strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingPos {
    /// Index of the record in [`Base::records`] order.
    pub record: u32,
    /// Sample within it.
    pub sample: u32,
    /// Window within the sample's embedded windows.
    pub window: u32,
}

/// The `job` of an append's report.
pub const APPEND_JOB: &str = "shard --append";

/// A complete earlier output, checked.
#[derive(Clone, Debug)]
pub struct Base {
    /// `<output>/<version>` of the earlier output.
    pub version_dir: Location,
    /// Its job fingerprint (its tar mtime is the new run's too, so unchanged tars can be
    /// copied as they are).
    pub job: JobFingerprint,
    /// Its completion records whose tars are intact, by triple.
    pub records: BTreeMap<TripleKey, TarDone>,
    /// Its stream names.
    pub names: crate::layout::StreamNames,
}

impl Base {
    /// Loads `version_dir`'s journal and checks it against this run's fingerprint `now`
    /// (options and model; `annotation_version` is ignored when `other_version`).
    pub fn load(
        output: &Storage,
        version_dir: Location,
        now: &JobFingerprint,
        other_version: bool,
    ) -> Result<Base, ShardError> {
        let journal = Journal::new(output.clone(), version_dir.clone());
        let refuse = |reason: BaseRefusal| ShardError::BaseRefused {
            dir: version_dir.to_string(),
            reason,
        };
        let Some(job) = journal.read_job()? else {
            return Err(refuse(BaseRefusal::NoJournal {
                journal_dir: journal.dir().to_string(),
            }));
        };
        let report = journal.dir().join("report.json");
        let last: Option<serde_json::Value> = match output.read(&report) {
            Ok(b) => serde_json::from_slice(&b).ok(),
            Err(e) if e.not_found => None,
            Err(e) => return Err(e.into()),
        };
        let field = |k: &str| last.as_ref().and_then(|v| v.get(k).cloned());
        let complete = field("ok").and_then(|v| v.as_bool()).unwrap_or(false);
        // an append that failed or was interrupted is continued by appending again: what it
        // completed is recorded like the rest
        let failed_append =
            !other_version && field("job").is_some_and(|j| j.as_str() == Some(APPEND_JOB));
        if !complete && !failed_append {
            return Err(refuse(BaseRefusal::Incomplete));
        }
        let mut diffs = differences(&job, now);
        if other_version {
            diffs.retain(|d| !d.starts_with("annotation_version:"));
        }
        if !diffs.is_empty() {
            return Err(refuse(BaseRefusal::MadeDifferently(diffs)));
        }
        // the same as this run's (the options matched), read from the base all the same
        let names = crate::journal::stream_names_of(&job.options).unwrap_or_default();
        let journal = journal.with_names(names);
        let mut records = BTreeMap::new();
        for d in journal.load_done()? {
            if d.contents.as_ref().is_some_and(|c| {
                c.keys.len() != c.captions.len() || c.keys.len() as u64 != d.samples
            }) {
                return Err(refuse(BaseRefusal::InconsistentRecord(format!(
                    "{}/part_{:06}/{:06}.tar",
                    d.tar.bin, d.tar.part, d.tar.tar
                ))));
            }
            if d.contents.is_none() {
                return Err(refuse(BaseRefusal::NoContentList(format!(
                    "{}/part_{:06}/{:06}.tar",
                    d.tar.bin, d.tar.part, d.tar.tar
                ))));
            }
            records.insert((d.tar.bin.clone(), d.tar.part, d.tar.tar), d);
        }
        Ok(Base {
            version_dir,
            job,
            records,
            names,
        })
    }

    /// Where a member tar of a triple lies.
    pub fn tar_location(&self, key: &TripleKey, stream: Stream) -> Location {
        self.version_dir.join(&self.names.tar_rel(
            &key.0,
            stream,
            &crate::spec::tar_rel_path(key.1, key.2),
        ))
    }

    /// The version as the change computation sees it.
    pub fn old_version(&self) -> OldVersion {
        let mut files = BTreeMap::new();
        let mut captions = BTreeSet::new();
        for (key, d) in &self.records {
            let c = d.contents.as_ref().expect("checked on load");
            for (stream, h) in c.hashes.iter() {
                files.insert((key.0.clone(), stream, key.1, key.2), *h);
            }
            captions.extend(c.captions.iter().flatten().copied());
        }
        OldVersion { files, captions }
    }

    /// Where each embedded caption's array is (the first occurrence, in triple order), as
    /// compact positions into `records` (in its order).
    pub fn embeddings(&self) -> std::collections::HashMap<u64, EmbeddingPos> {
        let mut out = std::collections::HashMap::new();
        for (r, d) in self.records.values().enumerate() {
            let c = d.contents.as_ref().expect("checked on load");
            for (s, caps) in c.captions.iter().enumerate() {
                for (w, h) in caps.iter().enumerate() {
                    out.entry(*h).or_insert(EmbeddingPos {
                        record: r as u32,
                        sample: s as u32,
                        window: w as u32,
                    });
                }
            }
        }
        out
    }

    /// Sample keys already in the output.
    pub fn keys(&self) -> std::collections::HashSet<&str> {
        self.records
            .values()
            .flat_map(|d| d.contents.as_ref().expect("checked").keys.iter())
            .map(String::as_str)
            .collect()
    }
}
