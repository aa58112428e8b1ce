//! numpy as the oracle for the cosmos-predict2.5 layout's pickles ([`write_window_dicts`]):
//! Python must load them to one dict per window with the exact arrays, `{}` for a window
//! without one, and numpy 1.x's own `pickle.dumps(list_of_dicts, protocol=4)` must equal our
//! bytes (numpy 2 names `numpy._core`, so only 1.x can be compared byte for byte).

use super::tests::random_array;
use super::*;
use crate::formats::test_python::{pack, run_python, unpack, XorShift};

/// Per case, four input records: our pickle, a byte per window (1: it has an array), the
/// shapes of the arrays (`<QQ` each), their raw data. Per case, two output records: `ok` or
/// what is wrong; Python's own pickle of the same list of dicts.
const PY_CHECK: &str = r#"
import pickle, numpy as np
recs = read_records()
out = []
for k in range(0, len(recs), 4):
    ours, mask, shapes_raw, data = recs[k], recs[k + 1], recs[k + 2], recs[k + 3]
    shapes = [struct.unpack_from('<QQ', shapes_raw, 16 * i) for i in range(len(shapes_raw) // 16)]
    arrays, off = [], 0
    for (r, c) in shapes:
        n = 2 * r * c
        arrays.append(np.frombuffer(data[off:off + n], dtype=np.float16).reshape(r, c).copy()
                      if n else np.empty((r, c), dtype=np.float16))
        off += n
    it = iter(arrays)
    want = [{'t2w_qwen2p5_7b': next(it)} if m else {} for m in mask]
    problems = []
    try:
        loaded = pickle.loads(ours)
    except Exception as e:
        loaded = None
        problems.append('pickle.loads failed: %r' % (e,))
    if loaded is not None:
        if type(loaded) is not list or len(loaded) != len(want):
            problems.append('not a list of %d' % len(want))
        else:
            for i, (a, b) in enumerate(zip(loaded, want)):
                if type(a) is not dict or list(a) != list(b):
                    problems.append('item %d: %r' % (i, a))
                elif b and (a['t2w_qwen2p5_7b'].dtype.str != '<f2'
                            or a['t2w_qwen2p5_7b'].shape != b['t2w_qwen2p5_7b'].shape
                            or a['t2w_qwen2p5_7b'].tobytes() != b['t2w_qwen2p5_7b'].tobytes()):
                    problems.append('item %d: array differs' % i)
    out.append(('; '.join(problems) or 'ok').encode())
    out.append(pickle.dumps(want, protocol=4))
write_records(out)
"#;

/// Rows and columns of an array.
type Shape = (usize, usize);

/// `(name, windows)`: `None` for a window without an embedding.
fn cases() -> Vec<(String, Vec<Option<F16Array>>)> {
    let mut rng = XorShift::new(77);
    let mut out = Vec::new();
    let shapes: Vec<(&str, Vec<Option<Shape>>)> = vec![
        ("no windows", vec![]),
        ("one placeholder", vec![None]),
        ("one window", vec![Some((24, 16))]),
        ("mixed", vec![Some((24, 16)), None, Some((13, 16)), None]),
        ("leading placeholders", vec![None, None, Some((5, 16))]),
        (
            "64 KiB arrays",
            vec![Some((32, 1024)), None, Some((40, 1024))],
        ),
        ("512x1024", vec![Some((512, 1024)), Some((1, 1024))]),
        (
            "zero-size",
            vec![Some((0, 16)), Some((2, 3)), Some((0, 16))],
        ),
    ];
    for (name, ws) in shapes {
        let windows = ws
            .into_iter()
            .map(|w| w.map(|s| random_array(&mut rng, s)))
            .collect();
        out.push((name.to_string(), windows));
    }
    // more than BATCHSIZE windows, memo ids past 255
    let many = (0..1003)
        .map(|i| (i % 3 != 1).then(|| random_array(&mut rng, (1, 2))))
        .collect();
    out.push(("1003 windows".into(), many));
    // frames closing at every save() in turn
    for n in (32_600..32_700).step_by(7) {
        let windows = vec![
            Some(random_array(&mut rng, (1, n))),
            None,
            Some(random_array(&mut rng, (1, 3))),
            Some(random_array(&mut rng, (1, 1))),
        ];
        out.push((format!("frame sweep {n}"), windows));
    }
    out
}

fn check_with(
    interpreter: &str,
    cases: &[(String, Vec<Option<F16Array>>)],
) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut records = Vec::new();
    let mut ours = Vec::new();
    for (_, windows) in cases {
        let pickle = write_window_dicts("t2w_qwen2p5_7b", windows);
        let mask: Vec<u8> = windows.iter().map(|w| u8::from(w.is_some())).collect();
        let (mut shapes, mut data) = (Vec::new(), Vec::new());
        for a in windows.iter().flatten() {
            shapes.extend_from_slice(&(a.shape.0 as u64).to_le_bytes());
            shapes.extend_from_slice(&(a.shape.1 as u64).to_le_bytes());
            data.extend(a.data.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        }
        records.extend([pickle.clone(), mask, shapes, data]);
        ours.push(pickle);
    }
    let out = unpack(&run_python(interpreter, PY_CHECK, pack(&records)));
    assert_eq!(
        out.len(),
        2 * cases.len(),
        "{interpreter}: wrong record count"
    );
    out.chunks(2)
        .zip(ours)
        .map(|(r, mine)| {
            (
                String::from_utf8_lossy(&r[0]).into_owned(),
                mine,
                r[1].clone(),
            )
        })
        .collect()
}

#[test]
fn python_loads_one_dict_per_window() {
    let cases = cases();
    for ((name, windows), (msg, mine, _)) in cases.iter().zip(check_with("python3", &cases)) {
        assert_eq!(msg, "ok", "case {name:?}");
        // and we read back what we wrote
        let back = read_window_dicts(&mine).unwrap();
        assert_eq!(back.len(), windows.len(), "case {name:?}");
        // by bits: random arrays hold NaNs
        let bits = |a: &F16Array| {
            (
                a.shape,
                a.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            )
        };
        let want: Vec<_> = windows.iter().flatten().map(bits).collect();
        let got: Vec<_> = read_window_arrays(&mine)
            .unwrap()
            .iter()
            .map(bits)
            .collect();
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn numpy1_writes_the_same_bytes() {
    let Ok(python) = std::env::var("SHARDFLOW_NUMPY1_PYTHON") else {
        println!("numpy-1 check not run: set SHARDFLOW_NUMPY1_PYTHON to a python with numpy<2");
        return;
    };
    let cases = cases();
    for ((name, _), (msg, mine, theirs)) in cases.iter().zip(check_with(&python, &cases)) {
        assert_eq!(msg, "ok", "case {name:?}");
        let at = mine.iter().zip(&theirs).position(|(a, b)| a != b);
        assert!(
            mine == theirs,
            "case {name:?}: ours ({} bytes) differs from numpy 1.x's ({} bytes) at byte {at:?}",
            mine.len(),
            theirs.len()
        );
    }
}
