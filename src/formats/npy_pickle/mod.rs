//! Byte-exact numpy pickles of float16 arrays: the `t5_xxl` tar member.
//!
//! The reference stores `pickle.dumps(list_of_arrays)` (protocol 4) where each array is a
//! C-ordered little-endian float16 `(L, d_model)` `numpy.ndarray`, pickled by numpy < 2, so
//! the pickle names `numpy.core.multiarray._reconstruct` (numpy 2 still loads it).
//! [`write_array_list`] reproduces CPython's C pickler byte for byte, including the memo
//! (the second and later arrays refer back to the memoized `_reconstruct`, `ndarray`,
//! `b'b'` and dtype) and protocol 4 framing (payloads of 64 KiB or more are written outside
//! frames). [`read_array_list`] reads such pickles back.
//!
//! The cosmos-predict2.5 layout stores one dict per window instead
//! (`[{"t2w_qwen2p5_7b": array}, {}, ...]`): [`write_window_dicts`], [`read_window_dicts`];
//! [`read_window_arrays`] reads the embedded arrays of either.

mod read;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_python;
#[cfg(test)]
mod tests_python_dicts;
mod write;

pub use read::{read_array_list, read_window_arrays, read_window_dicts};
pub use write::{write_array_list, write_window_dicts};

use half::f16;

/// An error from building an array or reading a pickle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The element count does not match the shape.
    #[error("array of shape ({rows}, {cols}) needs {} elements, got {len}", rows.saturating_mul(*cols))]
    ShapeMismatch {
        /// Rows of the shape.
        rows: usize,
        /// Columns of the shape.
        cols: usize,
        /// Number of elements given.
        len: usize,
    },
    /// The bytes are not a pickle of a list of 2-D float16 numpy arrays that this reader
    /// understands.
    #[error("bad array pickle at byte {offset}: {message}")]
    Malformed {
        /// Byte offset of the opcode where the problem was found.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

/// An owned 2-D float16 array in C (row-major) order, e.g. one window's `(L, d_model)`
/// caption embedding. `data.len()` must be `shape.0 * shape.1`; [`F16Array::new`] checks it,
/// and [`write_array_list`] panics on an array that breaks it.
#[derive(Debug, Clone, PartialEq)]
pub struct F16Array {
    /// (rows, columns).
    pub shape: (usize, usize),
    /// The elements, row by row.
    pub data: Vec<f16>,
}

impl F16Array {
    /// An array of `shape` (rows, columns) holding `data` row by row, checking that
    /// `data.len()` is `rows * cols`.
    pub fn new(shape: (usize, usize), data: Vec<f16>) -> Result<Self, PickleError> {
        check_len(shape, data.len())?;
        Ok(F16Array { shape, data })
    }

    /// An array from raw IEEE half-precision bit patterns, row by row.
    pub fn from_bits(shape: (usize, usize), bits: &[u16]) -> Result<Self, PickleError> {
        F16Array::new(shape, bits.iter().map(|&b| f16::from_bits(b)).collect())
    }

    /// A borrowed view of the array.
    pub fn view(&self) -> F16ArrayRef<'_> {
        F16ArrayRef {
            shape: self.shape,
            data: &self.data,
        }
    }
}

/// A borrowed 2-D float16 array in C (row-major) order; the same invariant as [`F16Array`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F16ArrayRef<'a> {
    /// (rows, columns).
    pub shape: (usize, usize),
    /// The elements, row by row.
    pub data: &'a [f16],
}

impl<'a> F16ArrayRef<'a> {
    /// A view of `data` as an array of `shape` (rows, columns), checking that `data.len()`
    /// is `rows * cols`.
    pub fn new(shape: (usize, usize), data: &'a [f16]) -> Result<Self, PickleError> {
        check_len(shape, data.len())?;
        Ok(F16ArrayRef { shape, data })
    }
}

/// Anything [`write_array_list`] can write: [`F16Array`] and [`F16ArrayRef`].
pub trait AsF16Array {
    /// A borrowed view of the array.
    fn view(&self) -> F16ArrayRef<'_>;
}

impl AsF16Array for F16Array {
    fn view(&self) -> F16ArrayRef<'_> {
        F16Array::view(self)
    }
}

impl AsF16Array for F16ArrayRef<'_> {
    fn view(&self) -> F16ArrayRef<'_> {
        *self
    }
}

fn check_len((rows, cols): (usize, usize), len: usize) -> Result<(), PickleError> {
    if rows.checked_mul(cols) == Some(len) {
        Ok(())
    } else {
        Err(PickleError::ShapeMismatch { rows, cols, len })
    }
}
