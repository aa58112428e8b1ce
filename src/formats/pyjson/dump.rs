//! Serialisation byte-identical to Python's `json.dumps`.

use std::fmt::Write as _;

use super::PyValue;

/// `json.dumps(v)` with Python's defaults: separators `", "` and `": "`, no newlines,
/// `ensure_ascii=True` (non-ASCII as lowercase `\uXXXX`, characters above U+FFFF as a
/// surrogate pair), floats as `float.__repr__`, `NaN` / `Infinity` / `-Infinity` as bare
/// words, key order kept.
pub fn dumps(v: &PyValue) -> String {
    let mut out = String::new();
    write_compact(&mut out, v);
    out
}

/// `json.dumps(v, indent=4)`: every list item and dict entry on its own line indented by
/// four spaces per level, item separator `","`, key separator `": "`, empty containers as
/// `[]` and `{}`, no trailing newline.
pub fn dumps_indent4(v: &PyValue) -> String {
    let mut out = String::new();
    write_indented(&mut out, v, 0);
    out
}

fn write_compact(out: &mut String, v: &PyValue) {
    match v {
        PyValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        PyValue::Object(items) => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_compact(out, item);
            }
            out.push('}');
        }
        scalar => write_scalar(out, scalar),
    }
}

fn newline_indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_indented(out: &mut String, v: &PyValue, level: usize) {
    match v {
        PyValue::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, level + 1);
                write_indented(out, item, level + 1);
            }
            newline_indent(out, level);
            out.push(']');
        }
        PyValue::Object(items) if !items.is_empty() => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, level + 1);
                write_str(out, k);
                out.push_str(": ");
                write_indented(out, item, level + 1);
            }
            newline_indent(out, level);
            out.push('}');
        }
        PyValue::Array(_) => out.push_str("[]"),
        PyValue::Object(_) => out.push_str("{}"),
        scalar => write_scalar(out, scalar),
    }
}

fn write_scalar(out: &mut String, v: &PyValue) {
    match v {
        PyValue::Null => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(digits) => out.push_str(digits),
        PyValue::Float(f) => write_float(out, *f),
        PyValue::Str(s) => write_str(out, s),
        PyValue::Array(_) | PyValue::Object(_) => unreachable!("containers are handled by callers"),
    }
}

/// A JSON string literal with `ensure_ascii=True` escaping (`py_encode_basestring_ascii`).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let plain = matches!(c, ' '..='~') && c != '"' && c != '\\';
        if plain {
            continue;
        }
        out.push_str(&s[run_start..i]);
        run_start = i + c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f == f64::INFINITY {
        out.push_str("Infinity");
    } else if f == f64::NEG_INFINITY {
        out.push_str("-Infinity");
    } else {
        out.push_str(&float_repr(f));
    }
}

/// Python's `repr(f)` for a float: the shortest digits that read back to the same value,
/// in positional form (`10.0`, `0.0001`, `29.97002997002997`) when the decimal exponent is
/// in `-4..16`, else in exponent form with a sign and at least two exponent digits
/// (`1e-05`, `1e+16`, `1.5e+300`). Non-finite values give `nan`, `inf`, `-inf` as in
/// Python (JSON writes those as `NaN`, `Infinity`, `-Infinity` instead).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits, as "d.ddde<exp>" or "de<exp>".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
        return out;
    }
    // Position of the decimal point relative to the start of the digits.
    let point = exp + 1;
    let n = digits.len() as i32;
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(&digits);
    } else if point >= n {
        out.push_str(&digits);
        for _ in 0..point - n {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        let p = point as usize;
        out.push_str(&digits[..p]);
        out.push('.');
        out.push_str(&digits[p..]);
    }
    out
}
