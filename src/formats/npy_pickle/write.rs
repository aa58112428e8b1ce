//! The writer: a replay of what CPython's C pickler (`Modules/_pickle.c`) does for
//! `pickle.dumps([ndarray, ...], protocol=4)` with numpy 1.x's `ndarray.__reduce__`.
//!
//! Each array reduces to `(_reconstruct, (ndarray, (0,), b'b'), (1, shape, dtype, False,
//! data))` and the dtype to `(dtype, ('f2', False, True), (3, '<', None, None, None, -1,
//! -1, 0))`. The pickler memoizes every str, bytes, tuple, global and reduced object
//! (`MEMOIZE`) and refers back with `BINGET`. Objects shared between arrays are the
//! `_reconstruct` function, the `ndarray` and `dtype` classes, the `'numpy'` module name,
//! the one-byte `b'b'` (CPython caches one-byte bytes), the float16 dtype singleton, and the
//! empty `b''` data of zero-size arrays (a singleton too).
//!
//! Framing (protocol 4): the first write after `PROTO` opens a frame (9 header bytes); at the
//! start of every `save()` call a frame of 64 KiB or more is closed; a bytes payload of
//! 64 KiB or more closes the current frame and is written, header included, outside any
//! frame; a frame with fewer than 4 bytes gets no header at all.

use half::f16;

use super::{check_len, AsF16Array, F16ArrayRef};

const FRAME_SIZE_TARGET: usize = 64 * 1024;
const FRAME_SIZE_MIN: usize = 4;
const FRAME_HEADER_SIZE: usize = 9;
/// Items per `MARK ... APPENDS` batch (`BATCHSIZE` in `_pickle.c`).
const BATCHSIZE: usize = 1000;

// Opcodes.
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const EMPTY_LIST: u8 = b']';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const SHORT_BINUNICODE: u8 = 0x8c;
const STACK_GLOBAL: u8 = 0x93;
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const BINBYTES8: u8 = 0x8e;
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const NEWFALSE: u8 = 0x89;
const NEWTRUE: u8 = 0x88;
const NONE: u8 = b'N';

/// `pickle.dumps(arrays, protocol=4)` exactly as CPython 3.x with numpy 1.x writes it for a
/// list of C-ordered little-endian float16 arrays; `[]` gives `pickle.dumps([])`.
///
/// # Panics
/// If an array's `data.len()` is not `rows * cols` (a bug in the caller: the pickle would
/// not load).
pub fn write_array_list<A: AsF16Array>(arrays: &[A]) -> Vec<u8> {
    let arrays: Vec<F16ArrayRef<'_>> = arrays.iter().map(AsF16Array::view).collect();
    for a in &arrays {
        if let Err(e) = check_len(a.shape, a.data.len()) {
            panic!("write_array_list: {e}");
        }
    }
    let payload: usize = arrays.iter().map(|a| 2 * a.data.len() + 128).sum();
    let mut p = Pickler::new(payload);
    p.write(&[PROTO, 4]);
    p.framing = true;
    // save(list)
    p.boundary();
    p.write(&[EMPTY_LIST]);
    p.memoize();
    if let [only] = &arrays[..] {
        p.save_array(only);
        p.write(&[APPEND]);
    } else {
        for batch in arrays.chunks(BATCHSIZE) {
            p.write(&[MARK]);
            for a in batch {
                p.save_array(a);
            }
            p.write(&[APPENDS]);
        }
    }
    p.write(&[STOP]);
    p.commit_frame();
    p.out
}

/// `pickle.dumps([{key: array}, {}, ...], protocol=4)` as CPython 3.x with numpy 1.x writes
/// it: one dict per window, `{key: array}` for a window with an embedding and `{}` for one
/// without (the cosmos-predict2.5 layout's `.pickle` member). The key string is memoized
/// once and referred back to, as Python does for the one interned string.
///
/// # Panics
/// As [`write_array_list`].
pub fn write_window_dicts<A: AsF16Array>(key: &str, windows: &[Option<A>]) -> Vec<u8> {
    let windows: Vec<Option<F16ArrayRef<'_>>> = windows
        .iter()
        .map(|w| w.as_ref().map(AsF16Array::view))
        .collect();
    for a in windows.iter().flatten() {
        if let Err(e) = check_len(a.shape, a.data.len()) {
            panic!("write_window_dicts: {e}");
        }
    }
    let payload: usize = windows
        .iter()
        .map(|w| w.map_or(8, |a| 2 * a.data.len() + 160))
        .sum();
    let mut p = Pickler::new(payload);
    p.write(&[PROTO, 4]);
    p.framing = true;
    p.boundary();
    p.write(&[EMPTY_LIST]);
    p.memoize();
    let mut key_id = None;
    if let [only] = &windows[..] {
        p.save_window_dict(key, &mut key_id, only.as_ref());
        p.write(&[APPEND]);
    } else {
        for batch in windows.chunks(BATCHSIZE) {
            p.write(&[MARK]);
            for w in batch {
                p.save_window_dict(key, &mut key_id, w.as_ref());
            }
            p.write(&[APPENDS]);
        }
    }
    p.write(&[STOP]);
    p.commit_frame();
    p.out
}

/// Memo ids of the objects that later arrays refer back to.
#[derive(Default)]
struct Shared {
    reconstruct: Option<u32>,
    numpy_str: Option<u32>,
    ndarray: Option<u32>,
    b_b: Option<u32>,
    dtype: Option<u32>,
    empty_bytes: Option<u32>,
}

struct Pickler {
    out: Vec<u8>,
    framing: bool,
    frame_start: Option<usize>,
    memo_len: u32,
    shared: Shared,
}

impl Pickler {
    fn new(payload: usize) -> Self {
        Pickler {
            out: Vec::with_capacity(payload + 512),
            framing: false,
            frame_start: None,
            memo_len: 0,
            shared: Shared::default(),
        }
    }

    /// `save(dict)` of `{key: array}` or `{}`: `EMPTY_DICT`, memoize, then the one item and
    /// `SETITEM` (`batch_dict_exact` for a dict of one item).
    fn save_window_dict(&mut self, key: &str, key_id: &mut Option<u32>, a: Option<&F16ArrayRef>) {
        self.boundary();
        self.write(&[EMPTY_DICT]);
        self.memoize();
        if let Some(a) = a {
            match *key_id {
                Some(id) => {
                    self.boundary();
                    self.get(id);
                }
                None => *key_id = Some(self.save_str(key)),
            }
            self.save_array(a);
            self.write(&[SETITEM]);
        }
    }

    /// `_Pickler_Write`: opens a frame on the first write while framing.
    fn write(&mut self, bytes: &[u8]) {
        if self.framing && self.frame_start.is_none() {
            self.frame_start = Some(self.out.len());
            self.out.extend_from_slice(&[0xFE; FRAME_HEADER_SIZE]);
        }
        self.out.extend_from_slice(bytes);
    }

    /// `_Pickler_CommitFrame`.
    fn commit_frame(&mut self) {
        if !self.framing {
            return;
        }
        let Some(start) = self.frame_start.take() else {
            return;
        };
        let len = self.out.len() - start - FRAME_HEADER_SIZE;
        if len >= FRAME_SIZE_MIN {
            self.out[start] = FRAME;
            self.out[start + 1..start + FRAME_HEADER_SIZE]
                .copy_from_slice(&(len as u64).to_le_bytes());
        } else {
            self.out.drain(start..start + FRAME_HEADER_SIZE);
        }
    }

    /// `_Pickler_OpcodeBoundary`, called at the start of every `save()`.
    fn boundary(&mut self) {
        if let (true, Some(start)) = (self.framing, self.frame_start) {
            if self.out.len() - start - FRAME_HEADER_SIZE >= FRAME_SIZE_TARGET {
                self.commit_frame();
            }
        }
    }

    /// `memo_put` with protocol 4.
    fn memoize(&mut self) -> u32 {
        self.write(&[MEMOIZE]);
        self.memo_len += 1;
        self.memo_len - 1
    }

    /// `memo_get`.
    fn get(&mut self, id: u32) {
        match u8::try_from(id) {
            Ok(small) => self.write(&[BINGET, small]),
            Err(_) => {
                let b = id.to_le_bytes();
                self.write(&[LONG_BINGET, b[0], b[1], b[2], b[3]]);
            }
        }
    }

    /// `save(str)` of a short ASCII string, not yet memoized.
    fn save_str(&mut self, s: &str) -> u32 {
        self.boundary();
        debug_assert!(s.len() <= 0xff);
        self.write(&[SHORT_BINUNICODE, s.len() as u8]);
        self.write(s.as_bytes());
        self.memoize()
    }

    /// `save(int)`: `save_long` for protocol >= 2.
    fn save_int(&mut self, v: i128) {
        self.boundary();
        if let Ok(v) = i32::try_from(v) {
            let b = v.to_le_bytes();
            if b[2] != 0 || b[3] != 0 {
                self.write(&[BININT, b[0], b[1], b[2], b[3]]);
            } else if b[1] != 0 {
                self.write(&[BININT2, b[0], b[1]]);
            } else {
                self.write(&[BININT1, b[0]]);
            }
            return;
        }
        // LONG1: minimal little-endian two's complement.
        let bytes = v.to_le_bytes();
        let mut n = bytes.len();
        while n > 1 {
            let (top, next) = (bytes[n - 1], bytes[n - 2]);
            let redundant = (top == 0 && next & 0x80 == 0) || (top == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            n -= 1;
        }
        self.write(&[LONG1, n as u8]);
        self.write(&bytes[..n]);
    }

    /// `save(x)` for an atom written by one opcode (`None`, `True`, `False`).
    fn save_atom(&mut self, op: u8) {
        self.boundary();
        self.write(&[op]);
    }

    /// `save_global` with protocol 4: module and name strings, `STACK_GLOBAL`, memoize.
    fn save_global(&mut self, module: &str, name: &str) -> u32 {
        self.boundary();
        if module == "numpy" {
            match self.shared.numpy_str {
                Some(id) => {
                    self.boundary();
                    self.get(id);
                }
                None => self.shared.numpy_str = Some(self.save_str(module)),
            }
        } else {
            self.save_str(module);
        }
        self.save_str(name);
        self.write(&[STACK_GLOBAL]);
        self.memoize()
    }

    /// `save(obj)` of an object that may already be memoized under `id`.
    fn save_memoized(&mut self, id: Option<u32>, first: fn(&mut Self) -> u32) -> u32 {
        match id {
            Some(id) => {
                self.boundary();
                self.get(id);
                id
            }
            None => first(self),
        }
    }

    /// `save(ndarray)` through numpy 1.x's `ndarray.__reduce__`.
    fn save_array(&mut self, a: &F16ArrayRef<'_>) {
        self.boundary();
        // save_reduce: callable, args, REDUCE, memoize, state, BUILD.
        self.shared.reconstruct = Some(self.save_memoized(self.shared.reconstruct, |p| {
            p.save_global("numpy.core.multiarray", "_reconstruct")
        }));
        self.boundary(); // the args tuple (ndarray, (0,), b'b')
        self.shared.ndarray =
            Some(self.save_memoized(self.shared.ndarray, |p| p.save_global("numpy", "ndarray")));
        self.boundary(); // (0,)
        self.save_int(0);
        self.write(&[TUPLE1]);
        self.memoize();
        self.shared.b_b = Some(self.save_memoized(self.shared.b_b, |p| {
            p.boundary();
            p.write(&[SHORT_BINBYTES, 1, b'b']);
            p.memoize()
        }));
        self.write(&[TUPLE3]);
        self.memoize();
        self.write(&[REDUCE]);
        self.memoize();

        self.boundary(); // the state tuple, five items
        self.write(&[MARK]);
        self.save_int(1);
        self.boundary(); // shape
        let (rows, cols) = a.shape;
        self.save_int(rows as i128);
        self.save_int(cols as i128);
        self.write(&[TUPLE2]);
        self.memoize();
        self.shared.dtype = Some(self.save_memoized(self.shared.dtype, Self::save_dtype));
        self.save_atom(NEWFALSE); // not Fortran-ordered
        self.save_data(a.data);
        self.write(&[TUPLE]);
        self.memoize();
        self.write(&[BUILD]);
    }

    /// `save(np.dtype('<f2'))` through numpy 1.x's `dtype.__reduce__`.
    fn save_dtype(&mut self) -> u32 {
        self.boundary();
        self.save_global("numpy", "dtype");
        self.boundary(); // ('f2', False, True)
        self.save_str("f2");
        self.save_atom(NEWFALSE);
        self.save_atom(NEWTRUE);
        self.write(&[TUPLE3]);
        self.memoize();
        self.write(&[REDUCE]);
        let id = self.memoize();
        self.boundary(); // (3, '<', None, None, None, -1, -1, 0)
        self.write(&[MARK]);
        self.save_int(3);
        self.save_str("<");
        for _ in 0..3 {
            self.save_atom(NONE);
        }
        self.save_int(-1);
        self.save_int(-1);
        self.save_int(0);
        self.write(&[TUPLE]);
        self.memoize();
        self.write(&[BUILD]);
        id
    }

    /// `save(bytes)` of the array data (`_save_bytes_data` + `_Pickler_write_bytes`).
    fn save_data(&mut self, data: &[f16]) {
        if data.is_empty() {
            self.shared.empty_bytes = Some(self.save_memoized(self.shared.empty_bytes, |p| {
                p.boundary();
                p.write(&[SHORT_BINBYTES, 0]);
                p.memoize()
            }));
            return;
        }
        self.boundary();
        let size = 2 * data.len();
        let mut header = Vec::with_capacity(9);
        if size <= 0xff {
            header.extend_from_slice(&[SHORT_BINBYTES, size as u8]);
        } else if let Ok(size32) = u32::try_from(size) {
            header.push(BINBYTES);
            header.extend_from_slice(&size32.to_le_bytes());
        } else {
            header.push(BINBYTES8);
            header.extend_from_slice(&(size as u64).to_le_bytes());
        }
        let bypass = size >= FRAME_SIZE_TARGET;
        let framing = self.framing;
        if bypass {
            self.commit_frame();
            self.framing = false;
        }
        // The header opens a frame if framing is on; the payload goes where it goes.
        self.write(&header);
        self.out.reserve(size);
        for x in data {
            self.out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        self.framing = framing;
        self.memoize();
    }
}
