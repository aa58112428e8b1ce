//! Text encoders: what embeds captions for the shard job (SPEC §5).
//!
//! - [`TextEncoder`] ([`encoder`]) is what the rest of the crate sees: caption → token ids,
//!   batches of token ids → per-caption `(len × d_model)` rows, the row width, and the
//!   model's [`ModelFingerprint`]. Operators, `embed` and `verify` depend on it only; the
//!   journal records the [`ModelFingerprint`] of the model directory before the model is
//!   loaded (so that a refused `--resume` costs no load), which is what an encoder's
//!   `fingerprint` reports (tested).
//! - [`t5`] is the one real implementation: [`t5::T5TextEncoder<B>`] runs the T5 encoder
//!   (or UMT5's, by `model_type`: [`t5::ModelType`]) on the Burn backend `B`; [`dispatch`]
//!   turns `--device` / `--t5-dtype` into a backend type, and [`t5::load`] hides it behind
//!   `Arc<dyn TextEncoder>`.
//! - [`weights`] reads Hugging Face checkpoints (safetensors, sharded, PyTorch) by tensor
//!   name, for any architecture; each architecture maps the names to its modules itself
//!   (T5: [`t5::loader`]).
//! - [`FakeEncoder`] ([`fake`]) is a deterministic stand-in for tests without model files.
//!
//! A T5 variant whose math differs only in details (UMT5: a bias table per layer) is a
//! [`t5::ModelType`]. A different encoder (a CLIP text tower) goes in its own folder beside
//! `t5/`: its config, Burn modules, key mapping (reading tensors through
//! [`weights::Weights`]) and tokenizer, and a type implementing [`TextEncoder`] with a `load`
//! like [`t5::load`]; the binary's `load_model` (`src/main.rs`, the one place it loads a
//! model) then picks it, and nothing downstream changes.

#[cfg(feature = "cuda")]
pub mod cublas;
pub mod cuda_env;
pub mod device;
pub mod encoder;
mod error;
pub mod fake;
pub mod fingerprint;
pub mod t5;
pub mod weights;

pub use device::{dispatch, BackendJob, DeviceSpec, Precision};
pub use encoder::TextEncoder;
pub use error::ModelError;
pub use fake::FakeEncoder;
pub use fingerprint::ModelFingerprint;

/// The CPU backend (pure Rust, fp32): burn-flex, whose matmuls run `gemm`'s AVX-512 / AVX2 kernels.
pub type CpuBackend = burn::backend::Flex;

/// `layer(x)` for rows `x` (`[1, rows, in]` on a GPU): Burn's `Linear`, or cuBLAS on the
/// unfused CUDA backend under `SHARDFLOW_CUDA_GEMM=cublas` (see `cublas`, `cuda` builds).
pub fn linear<B: burn::tensor::backend::Backend>(
    layer: &burn::nn::Linear<B>,
    x: burn::tensor::Tensor<B, 3>,
) -> burn::tensor::Tensor<B, 3> {
    #[cfg(feature = "cuda")]
    {
        cublas::linear(layer, x)
    }
    #[cfg(not(feature = "cuda"))]
    {
        layer.forward(x)
    }
}

/// Rounds fp32 values to fp16 with round-to-nearest-even, like numpy's `astype(np.float16)`
/// (overflow gives ±inf, NaN stays NaN).
pub fn to_f16(rows: &[f32]) -> Vec<half::f16> {
    rows.iter().map(|&x| half::f16::from_f32(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounding_is_nearest_even() {
        // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
        let halfway = 1.0 + f32::powi(2.0, -11);
        let above = 1.0 + 3.0 * f32::powi(2.0, -11); // halfway between 1+2^-10 and 1+2^-9
        let got = to_f16(&[halfway, above, 65520.0, -0.0, f32::NAN]);
        assert_eq!(got[0].to_f32(), 1.0);
        assert_eq!(got[1].to_f32(), 1.0 + f32::powi(2.0, -9));
        assert!(got[2].is_infinite());
        assert!(got[3].is_sign_negative() && got[3].to_f32() == 0.0);
        assert!(got[4].is_nan());
    }
}
