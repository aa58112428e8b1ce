//! numpy as the oracle. numpy 2.x (`python3`) and numpy 1.x (the interpreter named by
//! `SHARDFLOW_NUMPY1_PYTHON`) must load what we write to the exact shape, dtype and bits, and
//! numpy 1.x's own `pickle.dumps(list_of_arrays, protocol=4)` must equal our bytes (numpy 2
//! names `numpy._core`, so only 1.x can be compared byte for byte).

use super::tests::random_array;
use super::*;
use crate::formats::test_python::{pack, run_python, unpack, XorShift};

/// Per case, three input records: our pickle, the shapes (`<QQ` each), the raw data. Per case,
/// two output records: `ok` or what is wrong; numpy's own pickle of the same arrays.
const PY_CHECK: &str = r#"
import pickle, numpy as np
recs = read_records()
out = []
for k in range(0, len(recs), 3):
    ours, shapes_raw, data = recs[k], recs[k + 1], recs[k + 2]
    shapes = [struct.unpack_from('<QQ', shapes_raw, 16 * i) for i in range(len(shapes_raw) // 16)]
    problems = []
    try:
        loaded = pickle.loads(ours)
    except Exception as e:
        loaded = None
        problems.append('pickle.loads failed: %r' % (e,))
    if loaded is not None and (type(loaded) is not list or len(loaded) != len(shapes)):
        problems.append('not a list of %d: %r' % (len(shapes), type(loaded)))
        loaded = None
    arrays, off = [], 0
    for i, (r, c) in enumerate(shapes):
        n = 2 * r * c
        if n:
            arrays.append(np.frombuffer(data[off:off + n], dtype=np.float16).reshape(r, c).copy())
        else:
            arrays.append(np.empty((r, c), dtype=np.float16))
        if loaded is not None:
            a = loaded[i]
            if type(a) is not np.ndarray:
                problems.append('item %d is %r' % (i, type(a)))
                continue
            if a.dtype.str != '<f2' or a.shape != (r, c) or not a.flags['C_CONTIGUOUS']:
                problems.append('item %d: %s %r %s' % (i, a.dtype.str, a.shape, a.flags))
            elif a.tobytes() != data[off:off + n]:
                problems.append('item %d: values differ' % i)
        off += n
    out.append(('; '.join(problems) or 'ok').encode())
    out.append(pickle.dumps(arrays, protocol=4))
write_records(out)
print(np.__version__, file=sys.stderr)
"#;

struct Case {
    name: String,
    arrays: Vec<F16Array>,
}

fn case(name: impl Into<String>, rng: &mut XorShift, shapes: &[(usize, usize)]) -> Case {
    Case {
        name: name.into(),
        arrays: shapes.iter().map(|&s| random_array(rng, s)).collect(),
    }
}

fn cases() -> Vec<Case> {
    let mut rng = XorShift::new(2024);
    let mut out = vec![
        case("empty list", &mut rng, &[]),
        case("1x1", &mut rng, &[(1, 1)]),
        case("1x16", &mut rng, &[(1, 16)]),
        case("0x1024", &mut rng, &[(0, 1024)]),
        case(
            "two zero-size (shared b'')",
            &mut rng,
            &[(0, 16), (2, 3), (0, 16)],
        ),
        case("3x0", &mut rng, &[(3, 0)]),
        case("t5-tiny shapes", &mut rng, &[(24, 16), (20, 16), (13, 16)]),
        case("124x1024", &mut rng, &[(124, 1024)]),
        case("512x1024", &mut rng, &[(512, 1024)]),
        case("512x4096 (4 MiB)", &mut rng, &[(512, 4096)]),
        case(
            "exactly 64 KiB payload",
            &mut rng,
            &[(32, 1024), (32, 1024)],
        ),
        case("64 KiB - 2", &mut rng, &[(1, 32767), (1, 4)]),
        case("64 KiB + 2", &mut rng, &[(1, 32769), (1, 4)]),
        case("five 30 KiB arrays", &mut rng, &[(15, 1024); 5]),
        case(
            "small, big, small",
            &mut rng,
            &[(1, 16), (200, 1024), (1, 16), (0, 8)],
        ),
        case("256-byte payload (BINBYTES)", &mut rng, &[(8, 16)]),
        case("254-byte payload (SHORT_BINBYTES)", &mut rng, &[(1, 127)]),
        case(
            "shape needing BININT2 and BININT",
            &mut rng,
            &[(300, 1), (1, 70000)],
        ),
    ];
    // The frame crosses 64 KiB at every save() of the following arrays in turn: the first
    // array leaves the frame 0 to ~400 bytes short of 64 KiB, in steps of 2 bytes; the
    // second array, (1, 1) or (1, 128), shifts the rest by an even or an odd amount.
    for n in 32_500..32_700 {
        for second in [(1, 1), (1, 128)] {
            let shapes = [(1, n), second, (1, 3), (2, 2), (0, 1), (1, 1), (0, 1)];
            out.push(case(
                format!("frame sweep {n} {second:?}"),
                &mut rng,
                &shapes,
            ));
        }
    }
    // More than BATCHSIZE arrays, and memo ids past 255 (LONG_BINGET for the empty bytes).
    let mut many = vec![(1, 2); 1001];
    many.extend([(0, 4), (0, 2)]);
    out.push(case("1003 arrays", &mut rng, &many));
    for seed in 0..30u64 {
        let mut r = XorShift::new(seed);
        let shapes: Vec<_> = (0..1 + r.below(6))
            .map(|_| {
                let cols = [1, 2, 16, 64, 1024, 4096][r.below(6) as usize];
                ((r.below(40_000) as usize / cols).min(300), cols)
            })
            .collect();
        out.push(case(
            format!("random seed {seed} {shapes:?}"),
            &mut rng,
            &shapes,
        ));
    }
    out
}

/// Runs `interpreter` on every case; returns (message, numpy's pickle) per case.
fn check_with(interpreter: &str, cases: &[Case], ours: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let mut records = Vec::new();
    for (c, pickle) in cases.iter().zip(ours) {
        let mut shapes = Vec::new();
        let mut data = Vec::new();
        for a in &c.arrays {
            shapes.extend_from_slice(&(a.shape.0 as u64).to_le_bytes());
            shapes.extend_from_slice(&(a.shape.1 as u64).to_le_bytes());
            data.extend(a.data.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        }
        records.extend([pickle.clone(), shapes, data]);
    }
    let out = unpack(&run_python(interpreter, PY_CHECK, pack(&records)));
    assert_eq!(
        out.len(),
        2 * cases.len(),
        "{interpreter} returned a wrong number of records"
    );
    out.chunks(2)
        .map(|r| (String::from_utf8_lossy(&r[0]).into_owned(), r[1].clone()))
        .collect()
}

fn write(c: &Case) -> Vec<u8> {
    let views: Vec<_> = c.arrays.iter().map(F16Array::view).collect();
    write_array_list(&views)
}

#[test]
fn numpy2_loads_what_we_write() {
    let cases = cases();
    let ours: Vec<_> = cases.iter().map(write).collect();
    for (c, (msg, _)) in cases.iter().zip(check_with("python3", &cases, &ours)) {
        assert_eq!(msg, "ok", "case {:?}", c.name);
    }
}

#[test]
fn numpy1_loads_and_writes_the_same_bytes() {
    let Ok(python) = std::env::var("SHARDFLOW_NUMPY1_PYTHON") else {
        println!(
            "numpy-1 check not run: set SHARDFLOW_NUMPY1_PYTHON to a python with numpy<2 \
             (python3 -m venv /tmp/np1 && /tmp/np1/bin/pip install 'numpy<2')"
        );
        return;
    };
    let cases = cases();
    let ours: Vec<_> = cases.iter().map(write).collect();
    let results = check_with(&python, &cases, &ours);
    for ((c, mine), (msg, theirs)) in cases.iter().zip(&ours).zip(&results) {
        assert_eq!(msg, "ok", "case {:?}", c.name);
        if mine != theirs {
            let at = mine
                .iter()
                .zip(theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(mine.len().min(theirs.len()));
            panic!(
                "case {:?}: our pickle ({} bytes) differs from numpy 1.x's ({} bytes) at byte {at}",
                c.name,
                mine.len(),
                theirs.len()
            );
        }
    }
}
