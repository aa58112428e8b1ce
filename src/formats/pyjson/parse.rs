//! A JSON parser that accepts exactly what Python's `json.loads` accepts.

use std::collections::HashMap;

use super::{PyJsonError, PyValue};

/// Deepest nesting of lists and dicts [`parse`] accepts. Python's decoder recurses and raises
/// `RecursionError` a little under 1000 levels (the default recursion limit); this bound stays
/// under that, and keeps the recursive parser far from the end of a thread's stack.
pub const MAX_DEPTH: usize = 900;

/// Most digits an integer may have: Python 3.11+ refuses to convert longer decimal strings
/// (`sys.get_int_max_str_digits()`, default 4300), so `json.loads` raises `ValueError`.
pub const MAX_INT_DIGITS: usize = 4300;

/// Objects with more keys than this look duplicates up in a hash map instead of scanning.
const LINEAR_KEY_SCAN: usize = 16;

/// Parses `bytes` (UTF-8 JSON text) the way Python's `json.loads(text)` does.
///
/// Accepted: standard JSON, `NaN`, `Infinity`, `-Infinity`, integers of any size (up to
/// [`MAX_INT_DIGITS`] digits, kept as text, `-0` becoming `0`), whitespace (space, tab, CR,
/// LF) around the value. Numbers with a fraction or exponent are floats, rounded correctly
/// (`1E400` is infinite). A key given twice keeps its first position and its last value.
///
/// Rejected, with the byte offset: anything Python rejects (trailing commas, single quotes,
/// control characters inside strings, leading zeros, extra data, ...), plus three things a
/// Rust `String` cannot hold or Python treats differently: invalid UTF-8, a UTF-8 byte-order
/// mark, and a lone UTF-16 surrogate escape such as `"\ud800"` (Python keeps those in its
/// `str`).
pub fn parse(bytes: &[u8]) -> Result<PyValue, PyJsonError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(syntax(
                e.valid_up_to(),
                "invalid UTF-8 (JSON text must be UTF-8)",
            ))
        }
    };
    if text.starts_with('\u{feff}') {
        return Err(syntax(
            0,
            "unexpected UTF-8 BOM (Python's json.loads rejects it in a str; remove it)",
        ));
    }
    let mut p = Parser {
        s: text,
        b: bytes,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let value = p.value()?;
    p.skip_ws();
    if p.pos != p.b.len() {
        return Err(syntax(p.pos, "Extra data"));
    }
    Ok(value)
}

fn syntax(offset: usize, message: &str) -> PyJsonError {
    PyJsonError::Syntax {
        offset,
        message: message.to_owned(),
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, lit: &str) -> bool {
        if self.b[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// One value at `pos` (no leading whitespace), like the scanner's `scan_once`.
    fn value(&mut self) -> Result<PyValue, PyJsonError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'n') if self.eat_literal("null") => Ok(PyValue::Null),
            Some(b't') if self.eat_literal("true") => Ok(PyValue::Bool(true)),
            Some(b'f') if self.eat_literal("false") => Ok(PyValue::Bool(false)),
            Some(b'N') if self.eat_literal("NaN") => Ok(PyValue::Float(f64::NAN)),
            Some(b'I') if self.eat_literal("Infinity") => Ok(PyValue::Float(f64::INFINITY)),
            Some(b'-') if self.eat_literal("-Infinity") => Ok(PyValue::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(syntax(start, "Expecting value")),
        }
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<PyValue, PyJsonError>,
    ) -> Result<PyValue, PyJsonError> {
        if self.depth >= MAX_DEPTH {
            return Err(syntax(
                self.pos,
                &format!("lists and dicts nested deeper than {MAX_DEPTH} levels (Python raises RecursionError)"),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A number, following the C scanner's `_match_number_unicode`: `-?(0|[1-9]\d*)`, then
    /// `.\d+` only if a digit follows the dot, then `[eE][-+]?\d+` only if a digit follows
    /// (else the `e` is left for the caller, which then fails).
    fn number(&mut self) -> Result<PyValue, PyJsonError> {
        let start = self.pos;
        let digit = |p: &Self, i: usize| p.b.get(i).is_some_and(u8::is_ascii_digit);
        let mut i = self.pos;
        if self.b[i] == b'-' {
            i += 1;
        }
        match self.b.get(i) {
            Some(b'1'..=b'9') => {
                i += 1;
                while digit(self, i) {
                    i += 1;
                }
            }
            Some(b'0') => i += 1,
            _ => return Err(syntax(start, "Expecting value")),
        }
        let int_end = i;
        let mut is_float = false;
        if self.b.get(i) == Some(&b'.') && digit(self, i + 1) {
            is_float = true;
            i += 2;
            while digit(self, i) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(i) {
            let mut j = i + 1;
            if let Some(b'-' | b'+') = self.b.get(j) {
                j += 1;
            }
            if digit(self, j) {
                while digit(self, j) {
                    j += 1;
                }
                is_float = true;
                i = j;
            }
        }
        self.pos = i;
        let text = &self.s[start..i];
        if is_float {
            // Rust's parser rounds correctly, as Python's float() does; overflow gives inf.
            return text
                .parse::<f64>()
                .map(PyValue::Float)
                .map_err(|e| syntax(start, &format!("bad float {text:?}: {e}")));
        }
        let (neg, digits) = match text.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, text),
        };
        debug_assert_eq!(int_end, i);
        if digits.len() > MAX_INT_DIGITS {
            return Err(syntax(
                start,
                &format!(
                    "integer has {} digits, over Python's limit of {MAX_INT_DIGITS} for int conversion",
                    digits.len()
                ),
            ));
        }
        Ok(PyValue::Int(if neg && digits != "0" {
            text.to_owned()
        } else {
            digits.to_owned()
        }))
    }

    /// A string at `pos` (which holds the opening quote), like `scanstring` with
    /// `strict=True`.
    fn string(&mut self) -> Result<String, PyJsonError> {
        let begin = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.s[run_start..self.pos]);
            match self.peek() {
                None => return Err(syntax(begin, "Unterminated string starting at")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => return Err(syntax(self.pos, "Invalid control character at")),
            }
        }
    }

    /// One escape sequence at `pos` (the backslash).
    fn escape(&mut self, out: &mut String) -> Result<(), PyJsonError> {
        let at = self.pos;
        let Some(c) = self.b.get(at + 1).copied() else {
            return Err(syntax(at, "Unterminated string starting at"));
        };
        self.pos += 2;
        let simple = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(at, out),
            _ => return Err(syntax(at, "Invalid \\escape")),
        };
        out.push(simple);
        Ok(())
    }

    /// `\uXXXX` (the `\u` already consumed; `at` is the backslash), joining a surrogate pair.
    fn unicode_escape(&mut self, at: usize, out: &mut String) -> Result<(), PyJsonError> {
        let unit = self
            .hex4(self.pos)
            .ok_or_else(|| syntax(at, "Invalid \\uXXXX escape"))?;
        self.pos += 4;
        let code = if (0xd800..0xdc00).contains(&unit) {
            // A high surrogate joins a following \uDC00-\uDFFF escape; anything else leaves
            // it lone (which Python keeps and we cannot).
            let follows =
                self.b.get(self.pos) == Some(&b'\\') && self.b.get(self.pos + 1) == Some(&b'u');
            let low = if follows {
                Some(
                    self.hex4(self.pos + 2)
                        .ok_or_else(|| syntax(self.pos, "Invalid \\uXXXX escape"))?,
                )
            } else {
                None
            };
            match low {
                Some(low) if (0xdc00..0xe000).contains(&low) => {
                    self.pos += 6;
                    0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                }
                _ => return Err(lone_surrogate(at, unit)),
            }
        } else if (0xdc00..0xe000).contains(&unit) {
            return Err(lone_surrogate(at, unit));
        } else {
            unit
        };
        // Not a surrogate, so always a valid scalar value.
        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        Ok(())
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let h = self.b.get(i..i + 4)?;
        h.iter().try_fold(0u32, |acc, &c| {
            let d = (c as char).to_digit(16)?;
            Some(acc * 16 + d)
        })
    }

    fn array(&mut self) -> Result<PyValue, PyJsonError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(PyValue::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(PyValue::Array(items));
                }
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                _ => return Err(syntax(self.pos, "Expecting ',' delimiter")),
            }
        }
    }

    fn object(&mut self) -> Result<PyValue, PyJsonError> {
        self.pos += 1;
        let mut items: Vec<(String, PyValue)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(PyValue::Object(items));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(syntax(
                    self.pos,
                    "Expecting property name enclosed in double quotes",
                ));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(syntax(self.pos, "Expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            insert_last_wins(&mut items, &mut index, key, value);
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(PyValue::Object(items));
                }
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                _ => return Err(syntax(self.pos, "Expecting ',' delimiter")),
            }
        }
    }
}

fn lone_surrogate(at: usize, unit: u32) -> PyJsonError {
    syntax(
        at,
        &format!("lone surrogate \\u{unit:04x} (Python keeps it in a str; it has no UTF-8 form)"),
    )
}

/// `dict[key] = value`: a repeated key keeps its first position and takes the new value.
fn insert_last_wins(
    items: &mut Vec<(String, PyValue)>,
    index: &mut HashMap<String, usize>,
    key: String,
    value: PyValue,
) {
    if items.len() < LINEAR_KEY_SCAN {
        if let Some(slot) = items.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            items.push((key, value));
        }
        return;
    }
    if index.is_empty() {
        index.extend(items.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)));
    }
    match index.get(&key) {
        Some(&i) => items[i].1 = value,
        None => {
            index.insert(key.clone(), items.len());
            items.push((key, value));
        }
    }
}
