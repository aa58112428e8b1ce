//! `<version>/SHA256SUMS`: one line per tar, `<64 lowercase hex>  <path>` (two spaces: text
//! mode, as `sha256sum` writes it), the path relative to the version directory, lines sorted
//! by path and ended by `\n`, so `sha256sum -c SHA256SUMS` run in the version directory checks
//! a copy of the dataset.

/// The manifest's file name, in the version directory.
pub const SHA256SUMS: &str = "SHA256SUMS";

/// One manifest line: a file and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Path relative to the version directory.
    pub path: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// The manifest's text: `entries` sorted by path.
pub fn render(entries: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.path))
        .collect()
}

/// The entries of a manifest, in file order; the error names the first bad line (1-based).
/// Accepts `sha256sum`'s binary-mode marker (`<hex> *<path>`) too.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {}: not `<64 hex digits>  <path>`", i + 1);
        let (hash, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .filter(|p| !p.is_empty())
            .ok_or_else(bad)?;
        out.push(Entry {
            path: path.to_string(),
            sha256: hash.to_ascii_lowercase(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, c: char) -> Entry {
        Entry {
            path: path.into(),
            sha256: std::iter::repeat_n(c, 64).collect(),
        }
    }

    #[test]
    fn renders_sorted_by_path_with_two_spaces_and_newlines() {
        let text = render(&[
            e("b/video/part_000000/000000.tar", 'b'),
            e("a/metas/x.tar", 'a'),
        ]);
        let a: String = "a".repeat(64);
        let b: String = "b".repeat(64);
        assert_eq!(
            text,
            format!("{a}  a/metas/x.tar\n{b}  b/video/part_000000/000000.tar\n")
        );
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn parses_what_it_renders_and_sha256sum_binary_lines() {
        let entries = vec![e("a/x.tar", 'a'), e("b/y z.tar", 'f')];
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
        let upper = format!("{} *c.tar\n", "A".repeat(64));
        assert_eq!(parse(&upper).unwrap(), vec![e("c.tar", 'a')]);
    }

    #[test]
    fn rejects_malformed_lines_naming_them() {
        assert_eq!(
            parse(&format!("{}  ok.tar\nnot a line\n", "0".repeat(64))).unwrap_err(),
            "line 2: not `<64 hex digits>  <path>`"
        );
        assert!(parse(&format!("{} x.tar\n", "0".repeat(64))).is_err());
        assert!(parse(&format!("{}  x.tar\n", "g".repeat(64))).is_err());
        assert!(parse(&format!("{}  \n", "0".repeat(64))).is_err());
    }
}
