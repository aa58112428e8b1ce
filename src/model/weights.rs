//! Raw tensors by Hugging Face name, from the checkpoint files of a model directory.
//!
//! Opening reads only headers (safetensors) or the pickle index (PyTorch); tensor data is
//! read one tensor at a time, on demand, and converted to `f32`. Safetensors files are read
//! with plain seeks, so a full encoder-decoder checkpoint costs only its encoder's bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::tensor::DType;
use burn_store::TensorSnapshot;
use half::{bf16, f16};
use safetensors::tensor::TensorInfo;
use safetensors::Dtype;
use serde::Deserialize;

use crate::model::ModelError;

/// Weight files looked for in a model directory, most preferred first.
pub const WEIGHT_FILES: [&str; 5] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin.reduced",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
];

/// The element types a checkpoint tensor may have.
#[derive(Debug, Clone, Copy)]
enum Element {
    F64,
    F32,
    F16,
    BF16,
}

/// Where one tensor's data lives.
enum Location {
    /// Bytes `[start, end)` of a safetensors file.
    Safetensors { start: u64, len: usize },
    /// A lazily loaded tensor of a PyTorch checkpoint.
    Pytorch(Box<TensorSnapshot>),
}

/// One tensor: its file, shape, element type and data location.
struct Entry {
    file: usize,
    shape: Vec<usize>,
    element: Result<Element, String>,
    location: Location,
}

/// All tensors of a checkpoint (one file or several shards), by name.
pub struct Weights {
    /// What errors about absent tensors point at: the weight file or shard index.
    origin: PathBuf,
    files: Vec<PathBuf>,
    entries: HashMap<String, Entry>,
}

/// A shard index (`*.index.json`).
#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::InvalidWeights {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl Weights {
    /// Opens the preferred weight file of `dir` (see [`WEIGHT_FILES`]).
    pub fn open_dir(dir: &Path) -> Result<Self, ModelError> {
        let found = WEIGHT_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file());
        let Some(path) = found else {
            return Err(ModelError::MissingWeights {
                dir: dir.to_owned(),
            });
        };
        let mut weights = Self {
            origin: path.clone(),
            files: Vec::new(),
            entries: HashMap::new(),
        };
        if path.to_string_lossy().ends_with(".index.json") {
            weights.add_shards(&path)?;
        } else {
            weights.add_file(&path)?;
        }
        Ok(weights)
    }

    /// Adds every shard named by the index at `index_path`.
    fn add_shards(&mut self, index_path: &Path) -> Result<(), ModelError> {
        let text = std::fs::read_to_string(index_path).map_err(io_error(index_path))?;
        let index: ShardIndex = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: index_path.to_owned(),
            source,
        })?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let mut shards: Vec<&String> = index.weight_map.values().collect();
        shards.sort();
        shards.dedup();
        for shard in shards {
            let path = dir.join(shard);
            if !path.is_file() {
                return Err(ModelError::MissingFile {
                    what: "weight shard named in the index",
                    path,
                });
            }
            self.add_file(&path)?;
        }
        Ok(())
    }

    /// Adds the tensors of one safetensors or PyTorch file.
    fn add_file(&mut self, path: &Path) -> Result<(), ModelError> {
        let file = self.files.len();
        self.files.push(path.to_owned());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.ends_with(".safetensors")) {
            self.add_safetensors(file, path)
        } else {
            self.add_pytorch(file, path)
        }
    }

    fn add_safetensors(&mut self, file: usize, path: &Path) -> Result<(), ModelError> {
        let mut reader = File::open(path).map_err(io_error(path))?;
        let file_len = reader.metadata().map_err(io_error(path))?.len();
        let mut n = [0u8; 8];
        reader
            .read_exact(&mut n)
            .map_err(|_| invalid(path, "shorter than the 8-byte header length"))?;
        let header_len = u64::from_le_bytes(n);
        if header_len > 100_000_000 || 8 + header_len > file_len {
            return Err(invalid(
                path,
                format!("header length {header_len} is invalid"),
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        reader.read_exact(&mut header).map_err(io_error(path))?;
        let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| invalid(path, format!("header is not JSON: {e}")))?;
        let data_start = 8 + header_len;
        for (name, value) in header {
            if name == "__metadata__" {
                continue;
            }
            let info: TensorInfo = serde_json::from_value(value)
                .map_err(|e| invalid(path, format!("tensor {name:?}: {e}")))?;
            let (start, end) = info.data_offsets;
            let element = match info.dtype {
                Dtype::F64 => Ok(Element::F64),
                Dtype::F32 => Ok(Element::F32),
                Dtype::F16 => Ok(Element::F16),
                Dtype::BF16 => Ok(Element::BF16),
                other => Err(format!("{other:?}")),
            };
            let count: usize = info.shape.iter().product();
            let bytes = count * info.dtype.bitsize() / 8;
            if end < start || end - start != bytes || data_start + end as u64 > file_len {
                return Err(invalid(
                    path,
                    format!("tensor {name:?} has data offsets {start}..{end} that do not fit"),
                ));
            }
            let location = Location::Safetensors {
                start: data_start + start as u64,
                len: end - start,
            };
            let entry = Entry {
                file,
                shape: info.shape,
                element,
                location,
            };
            self.entries.insert(name, entry);
        }
        Ok(())
    }

    fn add_pytorch(&mut self, file: usize, path: &Path) -> Result<(), ModelError> {
        let reader = burn_store::pytorch::PytorchReader::new(path)
            .map_err(|e| invalid(path, format!("cannot read PyTorch checkpoint: {e}")))?;
        for (name, snapshot) in reader.into_tensors() {
            let element = match snapshot.dtype {
                DType::F64 => Ok(Element::F64),
                DType::F32 => Ok(Element::F32),
                DType::F16 => Ok(Element::F16),
                DType::BF16 => Ok(Element::BF16),
                other => Err(format!("{other:?}")),
            };
            let entry = Entry {
                file,
                shape: snapshot.shape.to_vec(),
                element,
                location: Location::Pytorch(Box::new(snapshot)),
            };
            self.entries.insert(name, entry);
        }
        Ok(())
    }

    /// The weight file (or shard index) errors about absent tensors name.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Whether a tensor called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The names of every tensor of the checkpoint, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn entry(&self, name: &str) -> Result<&Entry, ModelError> {
        self.entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.origin.clone(),
                name: name.to_owned(),
            })
    }

    /// Checks that `name` exists with shape `expected` and a float element type.
    pub fn check(&self, name: &str, expected: &[usize]) -> Result<(), ModelError> {
        let entry = self.entry(name)?;
        let path = &self.files[entry.file];
        if entry.shape != expected {
            return Err(ModelError::ShapeMismatch {
                path: path.clone(),
                name: name.to_owned(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        if let Err(dtype) = &entry.element {
            return Err(ModelError::UnsupportedDtype {
                path: path.clone(),
                name: name.to_owned(),
                dtype: dtype.clone(),
            });
        }
        Ok(())
    }

    /// Reads tensor `name` as row-major `f32` values (after [`Weights::check`]).
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let entry = self.entry(name)?;
        let path = &self.files[entry.file];
        let element = entry
            .element
            .clone()
            .map_err(|dtype| ModelError::UnsupportedDtype {
                path: path.clone(),
                name: name.to_owned(),
                dtype,
            })?;
        let count: usize = entry.shape.iter().product();
        let values = match &entry.location {
            Location::Safetensors { start, len } => {
                let mut reader = File::open(path).map_err(io_error(path))?;
                reader
                    .seek(SeekFrom::Start(*start))
                    .map_err(io_error(path))?;
                let mut bytes = vec![0u8; *len];
                reader.read_exact(&mut bytes).map_err(io_error(path))?;
                decode_le(&bytes, element)
            }
            Location::Pytorch(snapshot) => snapshot
                .to_data()
                .map_err(|e| invalid(path, format!("tensor {name:?}: {e}")))?
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| invalid(path, format!("tensor {name:?}: {e:?}")))?,
        };
        if values.len() != count {
            return Err(invalid(
                path,
                format!(
                    "tensor {name:?} holds {} values, expected {count}",
                    values.len()
                ),
            ));
        }
        Ok(values)
    }
}

/// Little-endian bytes of `element` values to `f32` (F64 is rounded, the others are exact).
fn decode_le(bytes: &[u8], element: Element) -> Vec<f32> {
    match element {
        Element::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Element::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
            .collect(),
        Element::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Element::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_half_types() {
        let values = [1.5f32, -2.0, 0.0, 65504.0];
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(decode_le(&f16_bytes, Element::F16), values);
        let bf16_bytes: Vec<u8> = [1.5f32, -2.0, 0.0, 3.0e38]
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        let decoded = decode_le(&bf16_bytes, Element::BF16);
        assert_eq!(&decoded[..3], &[1.5, -2.0, 0.0]);
        assert!((decoded[3] - 3.0e38).abs() / 3.0e38 < 1e-2);
        let f64_bytes: Vec<u8> = [0.25f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode_le(&f64_bytes, Element::F64), vec![0.25]);
    }
}
