//! Test support: run a real Python interpreter as the oracle for byte formats.
//!
//! Records travel both ways as a sequence of `u64` little-endian length + bytes, so no
//! format under test is needed to carry the test data. A missing interpreter fails the
//! test: CI installs `python3` with numpy.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Python helpers prepended to every script: `read_records()` reads stdin records,
/// `write_records(list_of_bytes)` writes them to stdout.
pub(crate) const PY_RECORDS: &str = r#"
import sys, struct
def read_records():
    data = sys.stdin.buffer.read()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from('<Q', data, i)
        out.append(data[i + 8:i + 8 + n])
        i += 8 + n
    return out
def write_records(recs):
    w = sys.stdout.buffer
    for r in recs:
        w.write(struct.pack('<Q', len(r)))
        w.write(r)
    w.flush()
"#;

/// Packs records for [`run_python`]'s stdin.
pub(crate) fn pack(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u64).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Splits the records a script wrote with `write_records`.
pub(crate) fn unpack(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at(8);
        let n = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        out.push(rest[..n].to_vec());
        bytes = &rest[n..];
    }
    out
}

/// Runs `interpreter -c PY_RECORDS + script` with `input` on stdin and returns stdout.
/// Panics, failing the test, when the interpreter cannot start or the script fails.
pub(crate) fn run_python(interpreter: &str, script: &str, input: Vec<u8>) -> Vec<u8> {
    let full = format!("{PY_RECORDS}\n{script}");
    let mut child = Command::new(interpreter)
        .arg("-c")
        .arg(&full)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {interpreter:?} ({e}); these tests need Python 3 with numpy")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        // A script that exits early closes the pipe; its exit status reports the problem.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("python output");
    writer.join().expect("stdin writer thread");
    assert!(
        out.status.success(),
        "{interpreter} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A tiny deterministic PRNG (xorshift64*) for property tests.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (any value; 0 is remapped).
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
