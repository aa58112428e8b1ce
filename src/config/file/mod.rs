//! The `--config` TOML file: reading it into [`ShardOptions`] (declared in
//! [`super::options`]), with every wrong-typed or unknown key reported at its key path.

use std::path::{Path, PathBuf};

use super::options::ShardOptions;
use crate::text::{shown, shown_within, SHOWN_CHARS};

/// Longest message about one key, in characters.
const MESSAGE_CHARS: usize = 800;

impl ShardOptions {
    /// Reads and parses a config file; relative paths in it are taken relative to the file's
    /// directory. Every wrong-typed or unknown key is reported (see [`ShardOptions::load_all`]),
    /// one per line after the first.
    pub fn load(path: &Path) -> Result<ShardOptions, String> {
        Self::load_all(path).map_err(|errors| match errors.as_slice() {
            [one] => format!("{}: {one}", path.display()),
            many => format!(
                "{}: {} problems:\n  {}",
                path.display(),
                many.len(),
                many.join("\n  ")
            ),
        })
    }

    /// [`ShardOptions::load`] with every problem apart, each starting with its key path.
    pub fn load_all(path: &Path) -> Result<ShardOptions, Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![e.to_string()])?;
        let mut file = Self::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = file.input_clip_path.as_mut() {
            if !p.contains("://") && Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).to_string_lossy().into_owned();
            }
        }
        if let Some(p) = file.t5_model.as_mut() {
            rebase(p);
        }
        if let Some(p) = file.cluster.hostfile.as_mut() {
            rebase(p);
        }
        for r in file.allowed_clip_roots.iter_mut().flatten() {
            if !r.contains("://") && Path::new(r.as_str()).is_relative() {
                *r = base.join(r.as_str()).to_string_lossy().into_owned();
            }
        }
        for r in file.remap_clip_location.iter_mut().flatten() {
            if let Some((from, to)) = r.split_once('=') {
                if !to.is_empty() && !to.contains("://") && Path::new(to).is_relative() {
                    *r = format!("{from}={}", base.join(to).display());
                }
            }
        }
        if let Some(o) = file.output_dataset_path.as_mut() {
            if !o.contains("://") && Path::new(o.as_str()).is_relative() && base != Path::new("") {
                *o = base.join(o.as_str()).to_string_lossy().into_owned();
            }
        }
        Ok(file)
    }

    /// Parses the text of a config file (paths as written). A syntax error is one problem;
    /// otherwise every wrong-typed or unknown key is a problem of its own, `key.path: what`,
    /// where serde alone stops at the first. Values are echoed shortened ([`shown`]).
    pub fn parse(text: &str) -> Result<ShardOptions, Vec<String>> {
        let first = match toml::from_str::<ShardOptions>(text) {
            Ok(file) => return Ok(file),
            Err(e) => e,
        };
        // serde stops at the first problem: check every key on its own
        let Ok(table) = toml::from_str::<toml::Table>(text) else {
            return Err(vec![located(text, &first)]);
        };
        let mut errors = Vec::new();
        check_entries(&[], &table, &mut errors);
        if errors.is_empty() {
            errors.push(located(text, &first));
        }
        Err(errors)
    }
}

/// A message cut to [`MESSAGE_CHARS`], control characters escaped.
fn capped(message: &str) -> String {
    shown_within(message, MESSAGE_CHARS)
}

/// `line L, column C: what`, without echoing the line (it may be megabytes long).
fn located(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return capped(e.message());
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!(
        "line {line}, column {column}: {}",
        capped(e.message().trim_end())
    )
}

/// `value` wrapped into the tables named by `path`: `{a: {b: value}}` for `path` `[a, b]`.
fn wrapped(path: &[&str], value: toml::Value) -> toml::Value {
    path.iter().rev().fold(value, |inner, key| {
        let mut t = toml::Table::new();
        t.insert((*key).to_owned(), inner);
        toml::Value::Table(t)
    })
}

/// Why `value` at `path` does not deserialize as part of a [`ShardOptions`], if it does not.
fn entry_error(path: &[&str], value: &toml::Value) -> Option<String> {
    let e = wrapped(path, value.clone())
        .try_into::<ShardOptions>()
        .err()?;
    // the same check on a copy whose key and strings are shortened, for a message that does
    // not echo megabytes (the type of every value, hence the error, stays the same)
    let short_path: Vec<String> = path.iter().map(|k| shortened(k)).collect();
    let short_path: Vec<&str> = short_path.iter().map(String::as_str).collect();
    let message = match wrapped(&short_path, short_strings(value)).try_into::<ShardOptions>() {
        Err(short) => short.message().to_owned(),
        Ok(_) => e.message().to_owned(),
    };
    Some(capped(&message))
}

/// `s` cut to [`SHOWN_CHARS`] characters, marked with `…` and its length when cut.
fn shortened(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// `value` with every string [`shortened`].
fn short_strings(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::String(s) => toml::Value::String(shortened(s)),
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(short_strings).collect()),
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| (shortened(k), short_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks every entry of `table` (at key path `path`) on its own, appending
/// `key.path: what is wrong` for each wrong-typed or unknown key. A table that fails is looked
/// into (sections such as `[cluster]`, whose fields are all optional, so one key alone is a
/// valid section); an array that fails, element by element (`bins.resolution[1]: ...`).
fn check_entries(path: &[&str], table: &toml::Table, errors: &mut Vec<String>) {
    for (key, value) in table {
        let mut at: Vec<&str> = path.to_vec();
        at.push(key);
        let Some(message) = entry_error(&at, value) else {
            continue;
        };
        let before = errors.len();
        match value {
            toml::Value::Table(inner) => check_entries(&at, inner, errors),
            toml::Value::Array(items) if items.len() > 1 => {
                for (i, item) in items.iter().enumerate() {
                    let one = toml::Value::Array(vec![item.clone()]);
                    if let Some(m) = entry_error(&at, &one) {
                        errors.push(format!("{}[{i}]: {m}", key_path(&at)));
                    }
                }
            }
            _ => {}
        }
        if errors.len() == before {
            errors.push(format!("{}: {message}", key_path(&at)));
        }
    }
}

/// `a.b.c`, each key [`shown`].
fn key_path(path: &[&str]) -> String {
    path.iter().map(|k| shown(k)).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests;
