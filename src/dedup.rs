//! Semantic dedup (SPEC §2 step 4): the dedup pipeline's pruning tables name, per clip, its
//! cosine similarity to the nearest kept clip of its cluster; clips with
//! `cosine_sim_score >= 1 - epsilon` are duplicates and are left out. The tables are every
//! `*.parquet` file below `<dedup>/extraction/semdedup_pruning_tables/` (columns `id`,
//! `max_id`, `cosine_sim_score`; `id` is the clip's `span_uuid`), local or on an object store.

use std::collections::HashSet;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::config::SemanticDedup;
use crate::error::ShardError;
use crate::storage::{Location, Storage};

/// What the tables say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Duplicates {
    /// Keys of the clips to leave out.
    pub ids: HashSet<String>,
    /// Parquet files read.
    pub files: usize,
    /// Rows read.
    pub rows: u64,
}

/// Where the tables are.
pub fn tables_dir(dedup: &SemanticDedup) -> Result<Location, String> {
    Ok(Location::parse(&dedup.path)?.join("extraction/semdedup_pruning_tables"))
}

/// Reads every pruning table; a missing folder, a table that cannot be read or lacks a
/// column is an error naming the file (the job has not started yet).
pub fn load_duplicates(storage: &Storage, dedup: &SemanticDedup) -> Result<Duplicates, ShardError> {
    let dir = tables_dir(dedup).map_err(|message| ShardError::InvalidOption {
        option: "--input-semantic-dedup-path",
        message,
    })?;
    let fail = |location: &Location, message: String| ShardError::SemanticDedup {
        location: location.to_string(),
        message,
    };
    let listed = storage.list(&dir).map_err(|e| {
        if e.not_found {
            fail(&dir, "no such folder (expected <input-semantic-dedup-path>/extraction/semdedup_pruning_tables/)".into())
        } else {
            e.into()
        }
    })?;
    let mut files: Vec<Location> = listed
        .iter()
        .filter(|l| l.error.is_none() && l.rel.to_lowercase().ends_with(".parquet"))
        .map(|l| dir.join(&l.rel))
        .collect();
    files.sort_by_key(|l| l.to_string());
    if files.is_empty() {
        return Err(fail(&dir, "no .parquet tables in it".into()));
    }
    let threshold = 1.0 - dedup.epsilon;
    let mut out = Duplicates {
        files: files.len(),
        ..Default::default()
    };
    for (loc, bytes) in files.iter().zip(storage.read_many(&files)) {
        let bytes = bytes?;
        let rows = read_table(bytes).map_err(|e| fail(loc, e.to_string()))?;
        out.rows += rows.len() as u64;
        out.ids.extend(
            rows.into_iter()
                .filter(|(_, score)| *score >= threshold)
                .map(|(id, _)| id),
        );
    }
    Ok(out)
}

/// `(id, cosine_sim_score)` of every row.
fn read_table(bytes: bytes::Bytes) -> Result<Vec<(String, f64)>, String> {
    let reader = SerializedFileReader::new(bytes).map_err(|e| e.to_string())?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    for want in ["id", "cosine_sim_score"] {
        if !names.iter().any(|n| n == want) {
            return Err(format!(
                "no column {want:?} (columns: {})",
                names.join(", ")
            ));
        }
    }
    let mut out = Vec::new();
    for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
        let row = row.map_err(|e| e.to_string())?;
        let (mut id, mut score) = (None, None);
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("id", Field::Str(s)) => id = Some(s.clone()),
                ("id", Field::Long(v)) => id = Some(v.to_string()),
                ("id", Field::Int(v)) => id = Some(v.to_string()),
                ("cosine_sim_score", Field::Double(v)) => score = Some(*v),
                ("cosine_sim_score", Field::Float(v)) => score = Some(*v as f64),
                ("cosine_sim_score", Field::Null) => score = Some(f64::NAN),
                ("id", other) | ("cosine_sim_score", other) => {
                    return Err(format!(
                        "column {name:?} holds {other}, not a string or number"
                    ))
                }
                _ => {}
            }
        }
        if let (Some(id), Some(score)) = (id, score) {
            out.push((id, score));
        }
    }
    Ok(out)
}
