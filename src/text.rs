//! Text helpers with no dependencies: Python's whitespace rules (caption normalisation and
//! content hashes agree with the reference's `str.strip()`), and values shown in messages.

/// Python's `str.isspace()`: Unicode `White_Space` plus the separators U+001C..U+001F, which
/// Python counts as whitespace and Rust's [`char::is_whitespace`] does not.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_whitespace)
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
    fn strip_follows_python() {
        assert_eq!(python_strip("  a b \n"), "a b");
        assert_eq!(python_strip("\u{1c}\u{1d}x\u{1e}\u{1f}"), "x");
        assert_eq!(python_strip("\u{a0}\u{2003}x\u{3000}\u{85}"), "x");
        // Zero-width space is not whitespace in Python either.
        assert_eq!(python_strip("\u{200b}x"), "\u{200b}x");
        assert_eq!(python_strip(" \t\r\n\u{b}\u{c} "), "");
        assert!(
            !"\u{1c}x".trim().starts_with('x'),
            "Rust's trim keeps U+001C"
        );
    }

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
