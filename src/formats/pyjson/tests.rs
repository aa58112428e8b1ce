//! Unit tests of the Python-compatible JSON rules (no interpreter needed).

use super::*;

fn p(s: &str) -> PyValue {
    parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &[u8]) -> (usize, String) {
    match parse(s) {
        Err(PyJsonError::Syntax { offset, message }) => (offset, message),
        other => panic!(
            "{:?} should fail, got {other:?}",
            String::from_utf8_lossy(s)
        ),
    }
}

fn roundtrip(s: &str) -> String {
    dumps(&p(s))
}

#[test]
fn scalars() {
    assert_eq!(p("null"), PyValue::Null);
    assert_eq!(p("true"), PyValue::Bool(true));
    assert_eq!(p("false"), PyValue::Bool(false));
    assert_eq!(p("\"x\""), PyValue::Str("x".into()));
    assert_eq!(p("0"), PyValue::Int("0".into()));
    assert_eq!(p("-0"), PyValue::Int("0".into()));
    assert_eq!(p("-12"), PyValue::Int("-12".into()));
    assert_eq!(p("1.5"), PyValue::Float(1.5));
    assert_eq!(p("-0.0"), PyValue::Float(-0.0));
    assert!(matches!(p("-0.0"), PyValue::Float(f) if f.is_sign_negative()));
    assert_eq!(p("1e2"), PyValue::Float(100.0));
    assert_eq!(p("1E+2"), PyValue::Float(100.0));
    assert_eq!(p("25e-1"), PyValue::Float(2.5));
}

#[test]
fn big_ints_are_kept_as_text() {
    let big = "123456789012345678901234567890";
    assert_eq!(p(big), PyValue::Int(big.into()));
    assert_eq!(roundtrip(&format!("-{big}")), format!("-{big}"));
    assert_eq!(p(big).as_i64(), None);
    assert_eq!(p("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(p("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(p("9223372036854775808").as_i64(), None);
    assert_eq!(p(big).as_f64(), Some(1.2345678901234568e29));
    let max = "7".repeat(MAX_INT_DIGITS);
    assert_eq!(roundtrip(&max), max);
    assert_eq!(roundtrip(&format!("-{max}")), format!("-{max}"));
    let (_, msg) = err(format!("{max}7").as_bytes());
    assert!(msg.contains("4300"), "{msg}");
}

#[test]
fn nan_and_infinities() {
    assert!(matches!(p("NaN"), PyValue::Float(f) if f.is_nan()));
    assert_eq!(p("Infinity"), PyValue::Float(f64::INFINITY));
    assert_eq!(p("-Infinity"), PyValue::Float(f64::NEG_INFINITY));
    assert_eq!(
        roundtrip("[NaN, Infinity, -Infinity]"),
        "[NaN, Infinity, -Infinity]"
    );
    assert_eq!(
        roundtrip("[1E400, -1e400, 1e-400]"),
        "[Infinity, -Infinity, 0.0]"
    );
    for bad in [
        "nan", "inf", "-NaN", "+1", "Inf", "infinity", "NULL", "True",
    ] {
        err(bad.as_bytes());
    }
}

#[test]
fn float_repr_matches_python() {
    let cases: &[(f64, &str)] = &[
        (10.0, "10.0"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (9999999999999998.0, "9999999999999998.0"),
        (1.5e300, "1.5e+300"),
        (29.97002997002997, "29.97002997002997"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (123456789.125, "123456789.125"),
        (-2.5e-7, "-2.5e-07"),
        (1.2345e-5, "1.2345e-05"),
        (0.00012345, "0.00012345"),
        (1.2345e16, "1.2345e+16"),
        (f64::NAN, "nan"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for (f, want) in cases {
        assert_eq!(float_repr(*f), *want, "{f:e}");
    }
}

#[test]
fn string_escapes_parse() {
    let s = r#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00""#;
    assert_eq!(p(s), PyValue::Str("a\"b\\c/d\u{8}\u{c}\n\r\tAé€😀".into()));
    // Raw UTF-8 and DEL are allowed inside strings.
    assert_eq!(p("\"é😀\u{7f}\""), PyValue::Str("é😀\u{7f}".into()));
}

#[test]
fn string_escapes_dump() {
    let v = PyValue::Str("a\"b\\c/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}é€😀 ~".into());
    assert_eq!(
        dumps(&v),
        r#""a\"b\\c/\b\f\n\r\t\u0000\u001f\u007f\u00e9\u20ac\ud83d\ude00 ~""#
    );
}

#[test]
fn string_errors() {
    assert!(err(b"\"abc").1.contains("Unterminated"));
    assert!(err(b"\"a\nb\"").1.contains("Invalid control character"));
    assert!(err(b"\"a\tb\"").1.contains("Invalid control character"));
    assert!(err(b"\"\\x41\"").1.contains("Invalid \\escape"));
    assert!(err(b"\"\\u12\"").1.contains("\\uXXXX"));
    assert!(err(b"\"\\u12g4\"").1.contains("\\uXXXX"));
    assert!(err(b"\"\\ud83d\\u12\"").1.contains("\\uXXXX"));
    assert_eq!(err(b"[1, \"\\ud800\"]").0, 5);
    assert!(err(b"\"\\ud800\"").1.contains("lone surrogate"));
    assert!(err(b"\"\\udc00\"").1.contains("lone surrogate"));
    assert!(err(b"\"\\ud83dx\"").1.contains("lone surrogate"));
    assert!(err(b"\"\\ud83d\\ud83d\"").1.contains("lone surrogate"));
    assert!(err(b"\"\\").1.contains("Unterminated"));
}

#[test]
fn encoding_errors() {
    let (off, msg) = err(b"\"ab\xff\"");
    assert_eq!(off, 3);
    assert!(msg.contains("UTF-8"));
    assert!(err(b"\xef\xbb\xbf{}").1.contains("BOM"));
}

#[test]
fn structure_errors() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "Expecting value"),
        ("   ", 3, "Expecting value"),
        ("[1,]", 3, "Expecting value"),
        ("[1 2]", 3, "Expecting ',' delimiter"),
        ("{\"a\" 1}", 5, "Expecting ':' delimiter"),
        ("{\"a\": 1,}", 8, "Expecting property name"),
        ("{a: 1}", 1, "Expecting property name"),
        ("{'a': 1}", 1, "Expecting property name"),
        ("[1] x", 4, "Extra data"),
        ("1 2", 2, "Extra data"),
        ("01", 1, "Extra data"),
        ("1.", 1, "Extra data"),
        ("1.e5", 1, "Extra data"),
        ("1e", 1, "Extra data"),
        ("1e+", 1, "Extra data"),
        ("-", 0, "Expecting value"),
        ("-a", 0, "Expecting value"),
        (".5", 0, "Expecting value"),
        ("[", 1, "Expecting value"),
        ("{", 1, "Expecting property name"),
        ("\u{a0}1", 0, "Expecting value"),
        ("1\u{c}", 1, "Extra data"),
    ];
    for (text, offset, msg) in cases {
        let (o, m) = err(text.as_bytes());
        assert_eq!((o, m.contains(msg)), (*offset, true), "{text:?}: {o} {m}");
    }
}

#[test]
fn whitespace_is_python_whitespace() {
    assert_eq!(roundtrip(" \t\r\n[ 1 ,\n2\t]\r\n "), "[1, 2]");
    assert_eq!(
        roundtrip("{ \"a\" : { } , \"b\" : [ ] }"),
        r#"{"a": {}, "b": []}"#
    );
}

#[test]
fn duplicate_keys_keep_first_position_last_value() {
    assert_eq!(
        roundtrip(r#"{"a": 1, "b": 2, "a": 3, "c": 4, "b": 5}"#),
        r#"{"a": 3, "b": 5, "c": 4}"#
    );
    // Many keys take the hash-map path.
    let mut text = String::from("{");
    for i in 0..40 {
        text.push_str(&format!("\"k{i}\": {i}, "));
    }
    text.push_str("\"k3\": \"x\", \"k39\": null, \"new\": true}");
    let v = p(&text);
    let items = v.as_object().unwrap();
    assert_eq!(items.len(), 41);
    assert_eq!(items[3], ("k3".into(), PyValue::Str("x".into())));
    assert_eq!(items[39], ("k39".into(), PyValue::Null));
    assert_eq!(items[40].0, "new");
}

#[test]
fn key_order_is_kept() {
    let text = r#"{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}"#;
    assert_eq!(roundtrip(text), text);
}

#[test]
fn nesting_limit() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert_eq!(roundtrip(&ok), ok);
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(err(deep.as_bytes()).1.contains("nested deeper"));
    let deep_obj = "{\"a\": ".repeat(MAX_DEPTH + 1);
    assert!(err(deep_obj.as_bytes()).1.contains("nested deeper"));
}

#[test]
fn indent4_layout() {
    let v = p(r#"{"a": [], "b": {}, "c": [1, {"d": [true, null]}], "e": "é"}"#);
    let want = "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": [\n                true,\n                null\n            ]\n        }\n    ],\n    \"e\": \"\\u00e9\"\n}";
    assert_eq!(dumps_indent4(&v), want);
    assert_eq!(dumps_indent4(&PyValue::Array(vec![])), "[]");
    assert_eq!(dumps_indent4(&PyValue::Float(1e16)), "1e+16");
    assert_eq!(dumps(&PyValue::Object(vec![])), "{}");
}

#[test]
fn helpers() {
    let mut v = p(r#"{"s": "x", "i": 7, "f": 2.5, "b": true, "l": [1], "n": null}"#);
    assert_eq!(v.get("s").and_then(PyValue::as_str), Some("x"));
    assert_eq!(v.get("i").and_then(PyValue::as_i64), Some(7));
    assert_eq!(v.get("i").and_then(PyValue::as_f64), Some(7.0));
    assert_eq!(v.get("f").and_then(PyValue::as_f64), Some(2.5));
    assert_eq!(v.get("f").and_then(PyValue::as_i64), None);
    assert_eq!(v.get("b").and_then(PyValue::as_bool), Some(true));
    assert_eq!(
        v.get("l").and_then(PyValue::as_array).map(<[_]>::len),
        Some(1)
    );
    assert_eq!(v.get("missing"), None);
    let names: Vec<_> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(_, x)| x.type_name())
        .collect();
    assert_eq!(names, ["str", "int", "float", "bool", "list", "null"]);
    assert_eq!(v.type_name(), "dict");

    assert_eq!(v.set("b", PyValue::Bool(false)), Some(PyValue::Bool(true)));
    assert_eq!(v.try_set("new", PyValue::int(-3)), Ok(None));
    *v.get_mut("s").unwrap() = "y".into();
    assert_eq!(
        dumps(&v),
        r#"{"s": "y", "i": 7, "f": 2.5, "b": false, "l": [1], "n": null, "new": -3}"#
    );
    let mut list = PyValue::Array(vec![]);
    assert_eq!(list.set("k", PyValue::Null), None);
    assert_eq!(list, PyValue::Array(vec![]));
    let e = list.try_set("k", PyValue::Null).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot set key \"k\": the value is a list, not a dict"
    );
}

#[test]
fn serde_roundtrip_keeps_value() {
    let v = p(r#"{"a": [1, 2.5, "x", null, true, {"b": 123456789012345678901234567890}]}"#);
    let json = serde_json::to_string(&v).unwrap();
    let back: PyValue = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
}

#[test]
fn sample_metadata_files_roundtrip_byte_exact() {
    // Every metadata file of the sample dataset was written by json.dumps(indent=4), except
    // one that is truncated on purpose.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/data/sample-dataset/metas/v0")];
    let (mut ok, mut bad) = (0, Vec::new());
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            match parse(&bytes) {
                Ok(v) => {
                    assert_eq!(
                        dumps_indent4(&v).as_bytes(),
                        &bytes[..],
                        "{}",
                        path.display()
                    );
                    ok += 1;
                }
                Err(e) => bad.push((path.file_name().unwrap().to_owned(), e)),
            }
        }
    }
    assert!(ok >= 26, "only {ok} files");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, "9a5dca49-2522-5aa3-91d7-d6c1298844ce.json");
    assert!(
        bad[0].1.to_string().contains("Unterminated string"),
        "{}",
        bad[0].1
    );
}
