//! [`FakeEncoder`]: a deterministic stand-in for a real encoder, so that operator tests run
//! without model files.

use sha2::{Digest, Sha256};

use super::{ModelError, ModelFingerprint, TextEncoder};
use crate::text::python_strip;

/// The end-of-sequence id [`FakeEncoder::tokenize`] appends (T5's `</s>` id too).
pub const FAKE_EOS: u32 = 1;

/// Most ids [`FakeEncoder::tokenize`] returns, the end-of-sequence id included (as T5).
pub const FAKE_MAX_TOKENS: usize = 512;

/// A text encoder with no model behind it: a caption's ids are its `strip()`ped bytes
/// followed by [`FAKE_EOS`] (at most [`FAKE_MAX_TOKENS`] ids), and each row is a function of
/// the sequence's ids and the row's position, so that results are checkable and a row that
/// lands with the wrong sequence is noticed.
///
/// Every value is a multiple of 1/64 below 16 in magnitude, hence exact in fp16.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEncoder {
    /// Width of each output row.
    pub width: usize,
}

impl FakeEncoder {
    /// A fake encoder whose rows have `width` values.
    pub fn new(width: usize) -> Self {
        FakeEncoder { width }
    }

    /// The rows of one sequence (`len × width`, row-major).
    fn rows(&self, ids: &[u32]) -> Vec<f32> {
        let seq = ids.iter().fold(0u64, |h, &id| {
            h.wrapping_mul(31).wrapping_add(u64::from(id))
        });
        let mut out = Vec::with_capacity(ids.len() * self.width);
        for (pos, &id) in ids.iter().enumerate() {
            for col in 0..self.width {
                let m = (u64::from(id) * 131 + pos as u64 * 17 + col as u64 * 7 + seq) % 2048;
                out.push(m as f32 / 64.0 - 16.0);
            }
        }
        out
    }
}

impl TextEncoder for FakeEncoder {
    fn tokenize(&self, caption: &str) -> Vec<u32> {
        python_strip(caption)
            .bytes()
            .take(FAKE_MAX_TOKENS - 1)
            .map(u32::from)
            .chain([FAKE_EOS])
            .collect()
    }

    fn encode_batch(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        batch.iter().map(|ids| self.rows(ids)).collect()
    }

    fn d_model(&self) -> usize {
        self.width
    }

    /// A fingerprint naming the fake and its width (no files).
    fn fingerprint(&self) -> Result<ModelFingerprint, ModelError> {
        let digest = Sha256::digest(format!("fake encoder, width {}", self.width));
        Ok(ModelFingerprint {
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
            weights: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_is_deterministic_and_batch_independent() {
        let enc = FakeEncoder::new(4);
        assert_eq!(enc.tokenize("  ab "), [97, 98, FAKE_EOS]);
        assert_eq!(enc.tokenize(&"x".repeat(2000)).len(), FAKE_MAX_TOKENS);
        let (a, b) = (enc.tokenize("a red car"), enc.tokenize("a dog"));
        let both = enc.encode_batch(&[&a, &[], &b]);
        assert_eq!(both[0], enc.encode_batch(&[&a])[0]);
        assert_eq!(both[1], Vec::<f32>::new());
        assert_eq!(both[2].len(), b.len() * 4);
        assert_ne!(both[0][..4], both[2][..4], "rows depend on the sequence");
        let f16 = crate::model::to_f16(&both[0]);
        assert!(f16.iter().zip(&both[0]).all(|(h, &x)| h.to_f32() == x));
        assert_ne!(
            enc.fingerprint().unwrap(),
            FakeEncoder::new(8).fingerprint().unwrap()
        );
    }
}
