//! JSON exactly as Python's `json` module reads and writes it.
//!
//! [`parse`] accepts what `json.loads` accepts (standard JSON plus `NaN`, `Infinity` and
//! `-Infinity`, integers of any size, duplicate keys resolved like a Python `dict`), and
//! [`dumps`] / [`dumps_indent4`] give the bytes of `json.dumps(obj)` and
//! `json.dumps(obj, indent=4)` with the default options (`ensure_ascii=True`, floats as
//! `float.__repr__`). Together they round-trip a metadata file without changing a byte of
//! what Python would write.

mod dump;
mod parse;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_python;

pub use dump::{dumps, dumps_indent4, float_repr};
pub use parse::{parse, MAX_DEPTH, MAX_INT_DIGITS};

use serde::{Deserialize, Serialize};

/// A JSON value as Python's `json` module sees it.
///
/// Objects keep their key order (a Python `dict` does), and integers keep every digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PyValue {
    /// `null` (Python `None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer of any size, as normalized decimal text: an optional `-` and digits with no
    /// leading zero (`"0"`, `"-12"`, `"123456789012345678901234567890"`). Python's
    /// `int.__repr__` of the value, written as is by [`dumps`].
    Int(String),
    /// A float (a number with a fraction or an exponent, or `NaN` / `Infinity`).
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    Array(Vec<PyValue>),
    /// A dict: keys in insertion order, each key at most once.
    Object(Vec<(String, PyValue)>),
}

/// An error from [`parse`] or from editing a [`PyValue`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyJsonError {
    /// The input is not JSON that Python's `json.loads` accepts (or it holds something a Rust
    /// string cannot, such as a lone surrogate).
    #[error("invalid JSON at byte {offset}: {message}")]
    Syntax {
        /// Byte offset into the input where the problem was found.
        offset: usize,
        /// What is wrong, worded like Python's `JSONDecodeError` where it applies.
        message: String,
    },
    /// [`PyValue::try_set`] was called on something that is not a dict.
    #[error("cannot set key {key:?}: the value is a {found}, not a dict")]
    NotAnObject {
        /// The key that was to be set.
        key: String,
        /// [`PyValue::type_name`] of the value.
        found: &'static str,
    },
}

impl PyValue {
    /// An integer value from an `i64`.
    pub fn int(v: i64) -> PyValue {
        PyValue::Int(v.to_string())
    }

    /// The value under `key` if this is a dict that has it.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Object(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable access to the value under `key` if this is a dict that has it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut PyValue> {
        match self {
            PyValue::Object(items) => items.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` to `value` like Python's `d[key] = value`: an existing key keeps its
    /// position, a new key is appended. Returns the previous value, if any. On a value that
    /// is not a dict this does nothing and returns `None`; [`PyValue::try_set`] reports it.
    pub fn set(&mut self, key: &str, value: PyValue) -> Option<PyValue> {
        self.try_set(key, value).ok().flatten()
    }

    /// [`PyValue::set`] that fails with [`PyJsonError::NotAnObject`] on a non-dict.
    pub fn try_set(&mut self, key: &str, value: PyValue) -> Result<Option<PyValue>, PyJsonError> {
        match self {
            PyValue::Object(items) => {
                if let Some((_, slot)) = items.iter_mut().find(|(k, _)| k == key) {
                    Ok(Some(std::mem::replace(slot, value)))
                } else {
                    items.push((key.to_owned(), value));
                    Ok(None)
                }
            }
            other => Err(PyJsonError::NotAnObject {
                key: key.to_owned(),
                found: other.type_name(),
            }),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits an `i64`. (A bool is not an integer
    /// here, although Python's `bool` subclasses `int`.)
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PyValue::Int(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The number as a float, for an integer (rounded to nearest, like Python's
    /// `float(int)`; huge ones become infinite, where Python would raise) or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Int(s) => s.parse().ok(),
            PyValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PyValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_array(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The key/value pairs in order, if this is a dict.
    pub fn as_object(&self) -> Option<&[(String, PyValue)]> {
        match self {
            PyValue::Object(items) => Some(items),
            _ => None,
        }
    }

    /// The Python-ish type name, for error messages: `"null"`, `"bool"`, `"int"`, `"float"`,
    /// `"str"`, `"list"` or `"dict"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::Null => "null",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Array(_) => "list",
            PyValue::Object(_) => "dict",
        }
    }
}

impl From<bool> for PyValue {
    fn from(v: bool) -> Self {
        PyValue::Bool(v)
    }
}

impl From<i64> for PyValue {
    fn from(v: i64) -> Self {
        PyValue::Int(v.to_string())
    }
}

impl From<u64> for PyValue {
    fn from(v: u64) -> Self {
        PyValue::Int(v.to_string())
    }
}

impl From<f64> for PyValue {
    fn from(v: f64) -> Self {
        PyValue::Float(v)
    }
}

impl From<&str> for PyValue {
    fn from(v: &str) -> Self {
        PyValue::Str(v.to_owned())
    }
}

impl From<String> for PyValue {
    fn from(v: String) -> Self {
        PyValue::Str(v)
    }
}
