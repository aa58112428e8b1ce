//! Property tests of the byte formats (proptest): the JSON parser and the pickle reader never
//! panic, whatever the bytes; the writers round-trip through the readers. Python equality of
//! generated JSON values is in `pyjson/tests_python.rs`.

use half::f16;
use proptest::prelude::*;

use super::npy_pickle::{read_array_list, write_array_list, F16Array};
use super::pyjson::{dumps, dumps_indent4, parse, PyValue};

/// Any JSON value Python's `json` can hold, with unique keys per dict.
pub(crate) fn py_value() -> impl Strategy<Value = PyValue> {
    let leaf = prop_oneof![
        Just(PyValue::Null),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::int),
        "[1-9][0-9]{18,60}".prop_map(PyValue::Int),
        "-[1-9][0-9]{18,60}".prop_map(PyValue::Int),
        any::<f64>().prop_map(PyValue::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e16),
            Just(1e-5)
        ]
        .prop_map(PyValue::Float),
        any::<String>().prop_map(PyValue::Str),
        "[\\u{0}-\\u{7f}\\u{2028}\\u{feff}]{0,12}".prop_map(PyValue::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| PyValue::Object(m.into_iter().collect())),
        ]
    })
}

/// Structural equality with floats by bits (any NaN equals any NaN).
pub(crate) fn same(a: &PyValue, b: &PyValue) -> bool {
    match (a, b) {
        (PyValue::Float(x), PyValue::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (PyValue::Array(x), PyValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (PyValue::Object(x), PyValue::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

/// Byte edits: overwrite, insert or delete at positions taken modulo the length.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, pos, byte) in edits {
        let len = bytes.len();
        match op % 3 {
            0 if len > 0 => bytes[pos % len] = byte,
            1 => bytes.insert(pos % (len + 1), byte),
            _ if len > 0 => {
                bytes.remove(pos % len);
            }
            _ => {}
        }
    }
    bytes
}

fn arrays() -> impl Strategy<Value = Vec<F16Array>> {
    prop::collection::vec(
        (1usize..12, 1usize..9).prop_flat_map(|(r, c)| {
            prop::collection::vec(any::<u16>(), r * c)
                .prop_map(move |bits| F16Array::from_bits((r, c), &bits).unwrap())
        }),
        0..4,
    )
}

fn write(arrays: &[F16Array]) -> Vec<u8> {
    write_array_list(&arrays.iter().map(F16Array::view).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_parser_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn json_parser_never_panics_near_json(
        v in py_value(),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let _ = parse(&mutate(dumps(&v).into_bytes(), &edits));
        let _ = parse(&mutate(dumps_indent4(&v).into_bytes(), &edits));
    }

    #[test]
    fn json_writers_round_trip(v in py_value()) {
        for text in [dumps(&v), dumps_indent4(&v)] {
            let back = parse(text.as_bytes()).expect("our output parses");
            prop_assert!(same(&back, &v), "parse(dumps(v)) != v for {text:?}");
            prop_assert_eq!(dumps(&back), dumps(&v));
        }
    }

    #[test]
    fn pickles_round_trip(a in arrays()) {
        let back = read_array_list(&write(&a)).expect("our pickle reads");
        prop_assert_eq!(back.len(), a.len());
        for (x, y) in back.iter().zip(&a) {
            prop_assert_eq!(x.shape, y.shape);
            let bits = |arr: &F16Array| arr.data.iter().map(|v: &f16| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(x), bits(y));
        }
    }

    #[test]
    fn pickle_reader_never_panics(
        a in arrays(),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..6),
        junk in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let _ = read_array_list(&mutate(write(&a), &edits));
        let _ = read_array_list(&junk);
    }
}
