//! The reader: a small pickle machine that knows just enough opcodes to load a list of
//! float16 numpy arrays pickled with protocol 2 to 5; [`numpy`] gives the numpy globals
//! their meaning.

use std::collections::HashMap;
use std::rc::Rc;

use super::{F16Array, PickleError};

mod numpy;

/// Reads a pickle of a list of 2-D float16 numpy arrays, as [`super::write_array_list`] and
/// numpy (`pickle.dumps(list_of_arrays)`) write it. Fortran-ordered and big-endian arrays
/// are converted to C order. Anything else (other globals, other dtypes, other shapes)
/// is an error naming the byte offset.
pub fn read_array_list(bytes: &[u8]) -> Result<Vec<F16Array>, PickleError> {
    let mut vm = Vm::new(bytes);
    let items = vm.run()?;
    items
        .iter()
        .map(|item| match vm.item(item)? {
            Item::Array(a) => Ok(a),
            Item::Dict(_) => vm.err("list item is a dict, not an array"),
        })
        .collect()
}

/// Reads a pickle of a list of dicts from str to 2-D float16 numpy arrays, as
/// [`super::write_window_dicts`] and Python write it: each dict's entries in order.
pub fn read_window_dicts(bytes: &[u8]) -> Result<Vec<Vec<(String, F16Array)>>, PickleError> {
    let mut vm = Vm::new(bytes);
    let items = vm.run()?;
    items
        .iter()
        .map(|item| match vm.item(item)? {
            Item::Dict(d) => Ok(d),
            Item::Array(_) => vm.err("list item is an array, not a dict"),
        })
        .collect()
}

/// The embedded windows' arrays, in window order, from a pickle in either layout: a list of
/// arrays ([`read_array_list`]) or a list of one-entry dicts, where an empty dict (a window
/// without a caption) contributes nothing ([`read_window_dicts`]). So the `i`-th array is
/// the `i`-th captioned window's in both.
pub fn read_window_arrays(bytes: &[u8]) -> Result<Vec<F16Array>, PickleError> {
    let mut vm = Vm::new(bytes);
    let items = vm.run()?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        match vm.item(item)? {
            Item::Array(a) => out.push(a),
            Item::Dict(d) if d.is_empty() => {}
            Item::Dict(mut d) if d.len() == 1 => out.push(d.remove(0).1),
            Item::Dict(d) => {
                return vm.err(format!("a window's dict has {} entries, not one", d.len()))
            }
        }
    }
    Ok(out)
}

/// A list item: an array or a dict of arrays.
enum Item {
    Array(F16Array),
    Dict(Vec<(String, F16Array)>),
}

#[derive(Clone, Debug)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Obj]>),
    /// Index into `Vm::lists`.
    List(usize),
    /// Index into `Vm::dicts`.
    Dict(usize),
    Global(Global),
    /// Index into `Vm::arrays`.
    Array(usize),
    /// Index into `Vm::dtypes`.
    Dtype(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Global {
    Reconstruct,
    NdArray,
    Dtype,
}

struct Vm<'a> {
    b: &'a [u8],
    pos: usize,
    op_at: usize,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: HashMap<u32, Obj>,
    lists: Vec<Vec<Obj>>,
    dicts: Vec<Vec<(Obj, Obj)>>,
    arrays: Vec<Option<F16Array>>,
    /// Byte order of each float16 dtype: `true` for big-endian.
    dtypes: Vec<Option<bool>>,
}

impl<'a> Vm<'a> {
    fn new(b: &'a [u8]) -> Self {
        Vm {
            b,
            pos: 0,
            op_at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            lists: Vec::new(),
            dicts: Vec::new(),
            arrays: Vec::new(),
            dtypes: Vec::new(),
        }
    }

    fn array(&self, obj: &Obj) -> Result<F16Array, PickleError> {
        match obj {
            Obj::Array(i) => match &self.arrays[*i] {
                Some(a) => Ok(a.clone()),
                None => self.err("array without state"),
            },
            other => self.err(format!("list item {other:?} is not an array")),
        }
    }

    fn item(&self, obj: &Obj) -> Result<Item, PickleError> {
        match obj {
            Obj::Dict(i) => {
                let mut entries = Vec::with_capacity(self.dicts[*i].len());
                for (k, v) in &self.dicts[*i] {
                    let Obj::Str(k) = k else {
                        return self.err(format!("dict key {k:?} is not a str"));
                    };
                    entries.push((k.to_string(), self.array(v)?));
                }
                Ok(Item::Dict(entries))
            }
            other => self.array(other).map(Item::Array),
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed {
            offset: self.op_at,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let b: &'a [u8] = self.b;
        match self.pos.checked_add(n).filter(|&end| end <= b.len()) {
            Some(end) => {
                let s = &b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.err("pickle data was truncated"),
        }
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let s = self.take(n)?;
        Ok(s.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn size(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.uint(n)?;
        usize::try_from(v).or_else(|_| self.err("size does not fit in memory"))
    }

    fn pop(&mut self) -> Result<Obj, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("unpickling stack underflow");
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Obj>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return self.err("could not find MARK");
        };
        Ok(self.stack.split_off(mark))
    }

    fn top(&self) -> Result<&Obj, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("unpickling stack underflow");
        }
        Ok(self.stack.last().expect("checked non-empty"))
    }

    fn memo_put(&mut self, id: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(id, v);
        Ok(())
    }

    fn memo_get(&mut self, id: u32) -> Result<(), PickleError> {
        match self.memo.get(&id) {
            Some(v) => {
                self.stack.push(v.clone());
                Ok(())
            }
            None => self.err(format!("memo key {id} was never stored")),
        }
    }

    fn tuple(&mut self, n: usize) -> Result<(), PickleError> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.stack.push(Obj::Tuple(items.into()));
        Ok(())
    }

    fn run(&mut self) -> Result<Vec<Obj>, PickleError> {
        loop {
            self.op_at = self.pos;
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let proto = self.take(1)?[0];
                    if !(2..=5).contains(&proto) {
                        return self.err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    let n = self.size(8)?;
                    if n > self.b.len() - self.pos {
                        return self.err("frame runs past the end of the data");
                    }
                }
                b'(' => self.marks.push(self.stack.len()),
                b']' => {
                    self.lists.push(Vec::new());
                    self.stack.push(Obj::List(self.lists.len() - 1));
                }
                b'}' => {
                    self.dicts.push(Vec::new());
                    self.stack.push(Obj::Dict(self.dicts.len() - 1));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b')' => self.stack.push(Obj::Tuple(Rc::new([]))),
                0x94 => self.memo_put(self.memo.len() as u32)?,
                b'q' => {
                    let id = self.uint(1)? as u32;
                    self.memo_put(id)?;
                }
                b'r' => {
                    let id = self.uint(4)? as u32;
                    self.memo_put(id)?;
                }
                b'h' => {
                    let id = self.uint(1)? as u32;
                    self.memo_get(id)?;
                }
                b'j' => {
                    let id = self.uint(4)? as u32;
                    self.memo_get(id)?;
                }
                0x8c | b'X' | 0x8d => {
                    let width = match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    };
                    let n = self.size(width)?;
                    let s = self.take(n)?;
                    let Ok(s) = std::str::from_utf8(s) else {
                        return self.err("string is not UTF-8");
                    };
                    self.stack.push(Obj::Str(s.into()));
                }
                b'C' | b'B' | 0x8e => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.size(width)?;
                    let s = self.take(n)?;
                    self.stack.push(Obj::Bytes(s.into()));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Obj::Str(module), Obj::Str(name)) = (module, name) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let g = self.global(&module, &name)?;
                    self.stack.push(Obj::Global(g));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(&module, &name)?;
                    self.stack.push(Obj::Global(g));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Obj::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Obj::Int(v as i64));
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Obj::Int(i64::from(v)));
                }
                0x8a => {
                    let n = self.size(1)?;
                    let s = self.take(n)?;
                    if n > 8 {
                        return self.err("integer too large");
                    }
                    let fill = if s.last().is_some_and(|b| b & 0x80 != 0) {
                        0xff
                    } else {
                        0
                    };
                    let mut buf = [fill; 8];
                    buf[..n].copy_from_slice(s);
                    self.stack.push(Obj::Int(i64::from_le_bytes(buf)));
                }
                b'N' => self.stack.push(Obj::None),
                0x88 => self.stack.push(Obj::Bool(true)),
                0x89 => self.stack.push(Obj::Bool(false)),
                0x85 => self.tuple(1)?,
                0x86 => self.tuple(2)?,
                0x87 => self.tuple(3)?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Obj::Tuple(items.into()));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let made = self.reduce(callable, args)?;
                    self.stack.push(made);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?.clone();
                    self.build(obj, state)?;
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'.' => return self.finish(),
                other => return self.err(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.b[self.pos..];
        let Some(n) = rest.iter().position(|&c| c == b'\n') else {
            return self.err("pickle data was truncated");
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn set_items(&mut self, items: Vec<Obj>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of items");
        }
        match self.top()? {
            Obj::Dict(i) => {
                let i = *i;
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    self.dicts[i].push((k, v));
                }
                Ok(())
            }
            other => self.err(format!("SETITEM on {other:?}, not a dict")),
        }
    }

    fn append(&mut self, items: Vec<Obj>) -> Result<(), PickleError> {
        match self.top()? {
            Obj::List(i) => {
                let i = *i;
                self.lists[i].extend(items);
                Ok(())
            }
            other => self.err(format!("APPEND to {other:?}, not a list")),
        }
    }
}
