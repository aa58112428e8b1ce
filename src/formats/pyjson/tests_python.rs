//! Python as the oracle: our `parse` + `dumps` / `dumps_indent4` against CPython's
//! `json.loads` + `json.dumps` (with and without `indent=4`), on a fixed corpus and on
//! seeded random values.

use super::*;
use crate::formats::proptests::same;
use crate::formats::test_python::{pack, run_python, unpack, XorShift};

/// For each input record: `OK`, `json.dumps(v)`, `json.dumps(v, indent=4)`; or `ERR`,
/// the message, and an empty record.
const PY_ROUNDTRIP: &str = r#"
import json
out = []
for r in read_records():
    try:
        v = json.loads(r.decode('utf-8'))
        out += [b'OK', json.dumps(v).encode('ascii'), json.dumps(v, indent=4).encode('ascii')]
    except (ValueError, RecursionError) as e:
        out += [b'ERR', str(e).encode('utf-8', 'replace'), b'']
write_records(out)
"#;

struct PyResult {
    ok: bool,
    compact: String,
    indent: String,
}

fn python_roundtrip(inputs: &[Vec<u8>]) -> Vec<PyResult> {
    let out = unpack(&run_python("python3", PY_ROUNDTRIP, pack(inputs)));
    assert_eq!(
        out.len(),
        3 * inputs.len(),
        "python returned a wrong number of records"
    );
    out.chunks(3)
        .map(|c| PyResult {
            ok: c[0] == b"OK",
            compact: String::from_utf8_lossy(&c[1]).into_owned(),
            indent: String::from_utf8_lossy(&c[2]).into_owned(),
        })
        .collect()
}

fn corpus() -> Vec<Vec<u8>> {
    let texts: &[&str] = &[
        r#""plain""#,
        r#""é ü ß 中文 ☃ \u00e9 \u4e2d""#,
        "\"astral 😀 𝄞 🇩🇪 \\ud83d\\ude00 \\uD834\\uDD1E\"",
        r#""\"\\\/\b\f\n\r\t \u0000\u0001\u001f \u007f \u0080 \u00ff \uffff \ufffe""#,
        "\"\u{7f}\u{80}\u{9f}\u{a0}\u{2028}\u{2029}\u{feff}\"",
        "[NaN, Infinity, -Infinity]",
        "[1e-05, 1e+16, 1E16, 0.1, 29.97002997002997, 5e-324, 1.7976931348623157e308]",
        "[1e-4, 0.0001, 1e15, 9999999999999998, 9999999999999998.0, 1e16, 12345678901234567.0]",
        "[2.5e-7, 1.5e300, 1E400, -1E400, 1e-400, -0.0, 0.0, 0e0, 0E-0, 1.0e+0]",
        "[0.30000000000000004, 100.0, 1e22, 1e21, 123e-20, 4.35, 2.675, 1.1, 2.2, 3.3]",
        "[123456789012345678901234567890, -123456789012345678901234567890, -0, 0, 7]",
        "[9223372036854775807, 9223372036854775808, -9223372036854775809]",
        "[true, false, null, [], {}, [[]], [{}], {\"a\": {}}]",
        r#"{"z": 1, "a": 2, "m": {"y": [1, {"x": null}], "b": 2.5}, "": "empty key"}"#,
        r#"{"a": 1, "b": 2, "a": 3, "c": {"d": 1, "d": [2]}, "b": null}"#,
        r#"{"é": "key non-ascii", "😀": 1, "\n": 2}"#,
        " \t\r\n {\"ws\" : [ 1 , 2 ] } \n\t ",
        r#"{"span_uuid": "x", "duration_span": [0.0, 2.002], "framerate": 29.97002997002997, "windows": [{"start_frame": 0, "end_frame": 59, "qwen_caption": "A cat."}], "valid": true}"#,
        // Rejected by both.
        "",
        "   ",
        "[1,]",
        "{\"a\": 1,}",
        "[1 2]",
        "{'a': 1}",
        "{a: 1}",
        "01",
        "-01",
        "1.",
        ".5",
        "1e",
        "+1",
        "nan",
        "inf",
        "-NaN",
        "\"\\x41\"",
        "\"\\u12\"",
        "\"tab\there\"",
        "\"nl\nhere\"",
        "[1] x",
        "\"unterminated",
        "{\"a\" 1}",
        "[",
        "\u{a0}1",
        "\u{feff}[1]",
        "True",
    ];
    let mut out: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    out.push(format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)).into_bytes());
    out.push(format!("-{}", "9".repeat(MAX_INT_DIGITS)).into_bytes());
    out.push("9".repeat(MAX_INT_DIGITS + 1).into_bytes());
    out.push(b"\"bad utf8 \xff\"".to_vec());
    // The sample dataset's metadata files (one of them is truncated on purpose).
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample-dataset/metas/v0");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push(std::fs::read(path).unwrap());
        }
    }
    out
}

#[test]
fn corpus_matches_python_json() {
    let inputs = corpus();
    let py = python_roundtrip(&inputs);
    for (input, want) in inputs.iter().zip(&py) {
        let shown = String::from_utf8_lossy(input);
        match parse(input) {
            Ok(v) => {
                assert!(
                    want.ok,
                    "python rejects {shown:?} but we accept it: {}",
                    want.compact
                );
                assert_eq!(dumps(&v), want.compact, "dumps of {shown:?}");
                assert_eq!(dumps_indent4(&v), want.indent, "dumps_indent4 of {shown:?}");
            }
            Err(e) => assert!(!want.ok, "python accepts {shown:?} but we reject it: {e}"),
        }
    }
}

/// Random values Python's `json` can round-trip: unique keys, no lone surrogates.
fn random_value(rng: &mut XorShift, depth: u32) -> PyValue {
    let kinds = if depth >= 4 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => PyValue::Null,
        1 => PyValue::Bool(rng.below(2) == 1),
        2 => PyValue::Int(random_int(rng)),
        3 => PyValue::Float(random_float(rng)),
        4 => PyValue::Str(random_string(rng)),
        5 => PyValue::Array(
            (0..rng.below(5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut items: Vec<(String, PyValue)> = Vec::new();
            for _ in 0..rng.below(5) {
                let key = random_string(rng);
                if items.iter().all(|(k, _)| *k != key) {
                    items.push((key, random_value(rng, depth + 1)));
                }
            }
            PyValue::Object(items)
        }
    }
}

fn random_int(rng: &mut XorShift) -> String {
    match rng.below(3) {
        0 => (rng.below(2000) as i64 - 1000).to_string(),
        1 => (rng.next_u64() as i64).to_string(),
        _ => {
            let mut s = (1 + rng.below(9)).to_string();
            for _ in 0..rng.below(60) {
                s.push(char::from(b'0' + rng.below(10) as u8));
            }
            if rng.below(2) == 1 {
                s.insert(0, '-');
            }
            s
        }
    }
}

fn random_float(rng: &mut XorShift) -> f64 {
    match rng.below(4) {
        // Any bit pattern: NaNs, infinities, subnormals, huge and tiny values.
        0 | 1 => f64::from_bits(rng.next_u64()),
        // Short decimals around the positional / exponent switch points.
        2 => {
            let mantissa = rng.below(100_000) as f64;
            let exp = rng.below(50) as i32 - 25;
            mantissa * 10f64.powi(exp)
        }
        _ => (rng.below(2_000_001) as f64 - 1_000_000.0) / 1000.0,
    }
}

fn random_string(rng: &mut XorShift) -> String {
    (0..rng.below(12))
        .map(|_| {
            let c = match rng.below(6) {
                0 => rng.below(0x20) as u32,
                1 | 2 => 0x20 + rng.below(0x60) as u32,
                3 => 0x80 + rng.below(0x780) as u32,
                4 => 0x800 + rng.below(0xf800) as u32,
                _ => 0x10000 + rng.below(0x100000) as u32,
            };
            char::from_u32(c).unwrap_or('\u{fffd}')
        })
        .collect()
}

#[test]
fn random_values_match_python_json() {
    const SEEDS: u64 = 40;
    const PER_SEED: usize = 25;
    let mut values = Vec::new();
    for seed in 0..SEEDS {
        let mut rng = XorShift::new(seed);
        for i in 0..PER_SEED {
            values.push((seed, i, random_value(&mut rng, 0)));
        }
    }
    let inputs: Vec<Vec<u8>> = values
        .iter()
        .map(|(_, _, v)| dumps(v).into_bytes())
        .collect();
    let py = python_roundtrip(&inputs);
    for ((seed, i, v), want) in values.iter().zip(&py) {
        let ours = dumps(v);
        assert!(
            want.ok,
            "seed {seed} value {i}: python rejects our {ours:?}: {}",
            want.compact
        );
        assert_eq!(ours, want.compact, "seed {seed} value {i}: dumps differs");
        let indented = dumps_indent4(v);
        assert_eq!(
            indented, want.indent,
            "seed {seed} value {i}: dumps_indent4 differs"
        );
        for text in [&ours, &indented] {
            let back = parse(text.as_bytes())
                .unwrap_or_else(|e| panic!("seed {seed} value {i}: cannot parse {text:?}: {e}"));
            assert!(
                same(&back, v),
                "seed {seed} value {i}: parse(dumps(v)) != v for {text:?}"
            );
        }
    }
}

/// Values drawn from the proptest strategy (deterministic runner: the same values on every
/// run) against Python's `json`.
#[test]
fn proptest_values_match_python_json() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = crate::formats::proptests::py_value();
    let values: Vec<PyValue> = (0..400)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let inputs: Vec<Vec<u8>> = values.iter().map(|v| dumps(v).into_bytes()).collect();
    let py = python_roundtrip(&inputs);
    for (i, (v, want)) in values.iter().zip(&py).enumerate() {
        let ours = dumps(v);
        assert!(
            want.ok,
            "value {i}: python rejects our {ours:?}: {}",
            want.compact
        );
        assert_eq!(ours, want.compact, "value {i}: dumps differs from Python");
        assert_eq!(dumps_indent4(v), want.indent, "value {i}: indent=4 differs");
    }
}
