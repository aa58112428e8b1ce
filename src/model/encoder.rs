//! What the pipeline needs of a text encoder, whatever its architecture or backend.

use std::sync::Arc;

use super::{ModelError, ModelFingerprint};

/// A caption encoder: tokenizes captions and encodes batches of token ids into per-token
/// rows of [`TextEncoder::d_model`] values.
///
/// Operators, `embed`, `verify`'s re-embedding and the journal see encoders only through this
/// trait, so the architecture (T5 today: [`super::t5::T5TextEncoder`]) and the Burn backend it
/// runs on stay out of them. It is object-safe: `Arc<dyn TextEncoder>` and `&dyn TextEncoder`
/// work where a concrete encoder does. Implementations are `Send + Sync` so that every worker
/// thread can use the same loaded weights.
pub trait TextEncoder: Send + Sync {
    /// Token ids of a raw caption, normalised the way the encoder's reference pipeline does
    /// it (for T5: `strip()`ped, `</s>` appended, at most 512 ids). Never empty.
    fn tokenize(&self, caption: &str) -> Vec<u32>;

    /// Encodes a batch of token id sequences, as [`TextEncoder::tokenize`] returns them.
    ///
    /// Returns, per sequence and in batch order, its `len × d_model` fp32 rows, row-major
    /// (an empty sequence gives an empty vector). Each result equals encoding that sequence
    /// alone.
    fn encode_batch(&self, batch: &[&[u32]]) -> Vec<Vec<f32>>;

    /// Width of each output row.
    fn d_model(&self) -> usize;

    /// The model's identity for the job journal. An encoder loaded from a Hugging Face model
    /// directory reports [`ModelFingerprint::of_dir`] of that directory, which the journal
    /// records before loading the model.
    fn fingerprint(&self) -> Result<ModelFingerprint, ModelError>;
}

impl<E: TextEncoder + ?Sized> TextEncoder for Arc<E> {
    fn tokenize(&self, caption: &str) -> Vec<u32> {
        (**self).tokenize(caption)
    }

    fn encode_batch(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        (**self).encode_batch(batch)
    }

    fn d_model(&self) -> usize {
        (**self).d_model()
    }

    fn fingerprint(&self) -> Result<ModelFingerprint, ModelError> {
        (**self).fingerprint()
    }
}
