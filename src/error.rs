//! Typed errors of the library. Each carries the path (or key) it is about.

use std::path::PathBuf;

/// Errors that stop a job before or while it runs (bad input records do not: they become
/// reject records).
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// An I/O operation on a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output version directory already has content.
    #[error("{0}: output directory is not empty; continue an interrupted job there with --resume, or choose another --output-dataset-path or --annotation-version, or remove it")]
    OutputNotEmpty(String),
    /// Another job holds the output's lock.
    #[error("{0}")]
    Locked(String),
    /// The input has no `metas/<version>` directory.
    #[error(
        "{0}: no such metadata directory (expected <input-clip-path>/metas/<annotation-version>)"
    )]
    NoMetaDir(String),
    /// A storage operation failed (after its retries, for an object store).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The T5 model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The job journal refuses the run (e.g. `--resume` with other options or model).
    #[error("{0}")]
    Journal(String),
    /// The earlier version a re-shard or append starts from cannot be used.
    #[error("{0}")]
    Base(String),
    /// A worker thread failed.
    #[error("dataflow failed: {0}")]
    Dataflow(String),
}

impl ShardError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShardError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Characters of a value [`shown`] keeps.
pub const SHOWN_CHARS: usize = 80;

/// Whether [`shown`] writes `c` escaped: control characters, line and paragraph separators,
/// and the invisible format characters (zero-width, bidirectional controls, BOM) that would
/// make a message lie about what it shows.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `s` as a message may echo it: at most [`SHOWN_CHARS`] characters, then `…` and the total
/// length in bytes, with control and invisible characters escaped (`\n`, `\u{200b}`), so
/// that a huge or binary value (a config string, a tar member name) cannot flood a message.
/// A short printable value is returned unchanged.
pub fn shown(s: &str) -> String {
    shown_within(s, SHOWN_CHARS)
}

/// [`shown`] keeping at most `max_chars` characters.
pub fn shown_within(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.push_str(&format!("… ({} bytes)", s.len()));
            break;
        }
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` quoted and escaped as `{:?}` writes it, cut like [`shown`]: `"abc"`, or
/// `"aaaa…" (10485760 bytes)` for a long value.
pub fn shown_quoted(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(shown("abc/x.json"), "abc/x.json");
        assert_eq!(shown("it's \"q\" \\ é 日本"), "it's \"q\" \\ é 日本");
        assert_eq!(
            shown("a\nb\u{0}\u{1b}\u{200b}\u{202e}"),
            "a\\nb\\0\\u{1b}\\u{200b}\\u{202e}"
        );
        let long = "a".repeat(10 << 20);
        let s = shown(&long);
        assert_eq!(
            s,
            format!("{}… ({} bytes)", "a".repeat(SHOWN_CHARS), 10 << 20)
        );
        assert!(s.len() < 120, "{s}");
        // cut on characters, never inside one
        let wide = "é".repeat(100);
        assert_eq!(
            shown(&wide),
            format!("{}… (200 bytes)", "é".repeat(SHOWN_CHARS))
        );
        assert_eq!(shown_within("abcdef", 3), "abc… (6 bytes)");
        assert_eq!(shown(""), "");
    }

    #[test]
    fn shown_quoted_is_debug_for_short_values() {
        assert_eq!(shown_quoted("a\"b\n"), "\"a\\\"b\\n\"");
        let long = format!("{}\u{7}", "x".repeat(200));
        assert_eq!(
            shown_quoted(&long),
            format!("\"{}\"… (201 bytes)", "x".repeat(SHOWN_CHARS))
        );
        let binary = "\u{0}".repeat(1000);
        assert!(shown_quoted(&binary).len() < 500);
    }
}
