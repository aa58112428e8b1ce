//! A model's identity, as the job journal records it: enough to refuse resuming or extending
//! an output with another model, without hashing tens of GB of weights.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ModelError;

/// The model's identity: its small files hashed, its weight files by name and size (hashing
/// tens of GB of weights would cost minutes).
///
/// Serialised as is into the journal's `job.json`, so its fields and their order are part of
/// the journal format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFingerprint {
    /// SHA-256 over the config and tokenizer files (and a sharded checkpoint's index).
    pub sha256: String,
    /// Weight files and their sizes.
    pub weights: Vec<(String, u64)>,
}

impl ModelFingerprint {
    /// Fingerprints a Hugging Face model directory: every `.json` and `.model` file (name
    /// and bytes) hashed in name order, and every `.safetensors`, `.bin` and `.bin.reduced`
    /// file by name and size. Nothing in it is specific to one architecture, so every
    /// encoder loaded from such a directory reports this (see
    /// [`super::TextEncoder::fingerprint`]); the journal computes it before any model is
    /// loaded.
    pub fn of_dir(dir: &Path) -> Result<Self, ModelError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ModelError::Io { path, source }
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut hasher = Sha256::new();
        let mut weights = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let is_weights = name.ends_with(".safetensors")
                || name.ends_with(".bin")
                || name.ends_with(".bin.reduced");
            if is_weights {
                let len = std::fs::metadata(&path).map_err(io(&path))?.len();
                weights.push((name, len));
            } else if name.ends_with(".json") || name.ends_with(".model") {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                hasher.update((name.len() as u64).to_le_bytes());
                hasher.update(name.as_bytes());
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
        }
        Ok(ModelFingerprint {
            sha256: hex(&hasher.finalize()),
            weights,
        })
    }
}

/// Lower-case hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
