//! What the numpy globals do: `_reconstruct` and `dtype` calls, `BUILD` of arrays and
//! dtypes (numpy 1.x or 2.x module names).

use half::f16;

use super::{Global, Obj, Vm};
use crate::formats::npy_pickle::{F16Array, PickleError};

impl Vm<'_> {
    /// The meaning of a `module.name` global; anything but the three numpy ones is refused.
    pub(super) fn global(&self, module: &str, name: &str) -> Result<Global, PickleError> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Ok(Global::Reconstruct)
            }
            ("numpy", "ndarray") => Ok(Global::NdArray),
            ("numpy", "dtype") => Ok(Global::Dtype),
            _ => self.err(format!("unexpected global {module}.{name}")),
        }
    }

    /// `REDUCE`: a call of `_reconstruct` (a new, empty array) or `dtype` (float16 only).
    pub(super) fn reduce(&mut self, callable: Obj, args: Obj) -> Result<Obj, PickleError> {
        let Obj::Tuple(args) = args else {
            return self.err("REDUCE arguments are not a tuple");
        };
        match (callable, &args[..]) {
            (
                Obj::Global(Global::Reconstruct),
                [Obj::Global(Global::NdArray), Obj::Tuple(_), Obj::Bytes(_)],
            ) => {
                self.arrays.push(None);
                Ok(Obj::Array(self.arrays.len() - 1))
            }
            (Obj::Global(Global::Dtype), [Obj::Str(code), ..]) => {
                if &**code != "f2" {
                    return self.err(format!("dtype {code:?} is not float16 ('f2')"));
                }
                self.dtypes.push(None);
                Ok(Obj::Dtype(self.dtypes.len() - 1))
            }
            (callable, _) => self.err(format!("unexpected call of {callable:?}")),
        }
    }

    /// `BUILD`: sets the state of an array (shape, dtype, order, data) or a dtype (byte order).
    pub(super) fn build(&mut self, obj: Obj, state: Obj) -> Result<(), PickleError> {
        let Obj::Tuple(state) = state else {
            return self.err("BUILD state is not a tuple");
        };
        match obj {
            Obj::Dtype(i) => {
                let big = match state.get(1) {
                    Some(Obj::Str(e)) if matches!(&**e, "<" | "=" | "|") => false,
                    Some(Obj::Str(e)) if &**e == ">" => true,
                    other => return self.err(format!("unexpected dtype byte order {other:?}")),
                };
                self.dtypes[i] = Some(big);
                Ok(())
            }
            Obj::Array(i) => {
                let [_version, Obj::Tuple(shape), Obj::Dtype(d), Obj::Bool(fortran), Obj::Bytes(data)] =
                    &state[..]
                else {
                    return self.err(
                        "unexpected ndarray state (want (1, shape, dtype, is_fortran, bytes))",
                    );
                };
                let (rows, cols) = match &shape[..] {
                    [Obj::Int(r), Obj::Int(c)] if *r >= 0 && *c >= 0 => (*r as usize, *c as usize),
                    _ => return self.err(format!("shape {shape:?} is not 2-D")),
                };
                let Some(big) = self.dtypes[*d] else {
                    return self.err("dtype used before its state was set");
                };
                let n = rows
                    .checked_mul(cols)
                    .filter(|n| n.checked_mul(2) == Some(data.len()));
                let Some(n) = n else {
                    return self.err(format!(
                        "{} data bytes for shape ({rows}, {cols})",
                        data.len()
                    ));
                };
                let mut values: Vec<f16> = data
                    .chunks_exact(2)
                    .map(|c| {
                        let pair = [c[0], c[1]];
                        f16::from_bits(if big {
                            u16::from_be_bytes(pair)
                        } else {
                            u16::from_le_bytes(pair)
                        })
                    })
                    .collect();
                if *fortran && rows > 1 && cols > 1 {
                    let column_major = values;
                    values = (0..n)
                        .map(|k| column_major[(k % cols) * rows + k / cols])
                        .collect();
                }
                self.arrays[i] = Some(F16Array::new((rows, cols), values)?);
                Ok(())
            }
            other => self.err(format!("unexpected BUILD on {other:?}")),
        }
    }

    /// `STOP`: the items of the list left on the stack.
    pub(super) fn finish(&mut self) -> Result<Vec<Obj>, PickleError> {
        let top = self.pop()?;
        if !self.stack.is_empty() || !self.marks.is_empty() {
            return self.err("items left on the stack at STOP");
        }
        let Obj::List(list) = top else {
            return self.err(format!("the pickle holds {top:?}, not a list"));
        };
        Ok(std::mem::take(&mut self.lists[list]))
    }
}
