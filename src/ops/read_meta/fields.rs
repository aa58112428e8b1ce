//! Typed access to metadata keys, each failure a reject reason and message.

use std::path::Path;

use super::Check;
use crate::formats::pyjson::PyValue;
use crate::record::RejectKind;

/// `.` and `..` resolved without touching the file system.
fn normalise(p: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Where a path really leads: absolute, symlinks resolved; lexically normalised when it
/// cannot be resolved (a missing file is rejected later, as missing).
pub(super) fn real_path(p: &Path) -> std::path::PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::canonicalize(&abs).unwrap_or_else(|_| normalise(&abs))
}

fn get<'a>(json: &'a PyValue, key: &str) -> Check<&'a PyValue> {
    json.get(key)
        .ok_or_else(|| (RejectKind::MissingKey, format!("missing key \"{key}\"")))
}

fn wrong(key: &str, v: &PyValue, want: &str) -> (RejectKind, String) {
    (
        RejectKind::WrongType,
        format!("key \"{key}\" is a {}, not {want}", v.type_name()),
    )
}

pub(super) fn get_str(json: &PyValue, key: &str) -> Check<String> {
    let v = get(json, key)?;
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong(key, v, "a string"))
}

pub(super) fn get_bool(json: &PyValue, key: &str) -> Check<bool> {
    let v = get(json, key)?;
    v.as_bool().ok_or_else(|| wrong(key, v, "a boolean"))
}

pub(super) fn get_int(json: &PyValue, key: &str) -> Check<i64> {
    let v = get(json, key)?;
    match v {
        PyValue::Int(_) => v.as_i64().ok_or_else(|| {
            (
                RejectKind::WrongType,
                format!("key \"{key}\" is out of range"),
            )
        }),
        _ => Err(wrong(key, v, "an integer")),
    }
}

pub(super) fn get_number(json: &PyValue, key: &str) -> Check<f64> {
    let v = get(json, key)?;
    match v {
        PyValue::Int(_) | PyValue::Float(_) => v.as_f64().ok_or_else(|| wrong(key, v, "a number")),
        _ => Err(wrong(key, v, "a number")),
    }
}
