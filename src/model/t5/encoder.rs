//! The T5 encoder stack: embedding, N pre-norm blocks (self-attention, feed-forward), final
//! RMS norm. Mirrors Hugging Face `T5EncoderModel` and `UMT5EncoderModel` in inference mode
//! (dropout is identity); the two differ only in which blocks own a position bias table.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::DType;

use super::attention::T5Attention;

/// Builds a [`T5LayerNorm`].
#[derive(Debug, Clone)]
pub struct T5LayerNormConfig {
    /// Width of the normalised dimension.
    pub d_model: usize,
    /// Added to the mean square before the square root.
    pub epsilon: f64,
}

impl T5LayerNormConfig {
    /// A norm over `d_model` features.
    pub fn new(d_model: usize, epsilon: f64) -> Self {
        Self { d_model, epsilon }
    }

    /// A norm with unit weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> T5LayerNorm<B> {
        T5LayerNorm {
            weight: Param::from_tensor(Tensor::ones([self.d_model], device)),
            epsilon: self.epsilon,
        }
    }
}

/// T5's RMS layer norm: `weight * x / sqrt(mean(x²) + ε)`, no mean subtraction, no bias.
#[derive(Module, Debug)]
pub struct T5LayerNorm<B: Backend> {
    /// Per-feature scale, `[d_model]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Added to the mean square.
    pub epsilon: f64,
}

impl<B: Backend> T5LayerNorm<B> {
    /// Normalises the last dimension of `x` (`[batch, len, d_model]`).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        if is_half(dtype) {
            // As Hugging Face does: the mean square and the scaling in fp32 (x² overflows
            // fp16 from |x| > 256), back to half precision before the weight.
            let xf = x.cast(DType::F32);
            let variance = xf.clone().square().mean_dim(2);
            let normed = (xf / (variance + self.epsilon).sqrt()).cast(dtype);
            return normed * self.weight.val().unsqueeze::<3>();
        }
        // A division rather than `recip()`: Burn's SIMD reciprocal may be approximate.
        let variance = x.clone().square().mean_dim(2);
        x / (variance + self.epsilon).sqrt() * self.weight.val().unsqueeze::<3>()
    }
}

/// Whether a float dtype is fp16 or bf16.
pub fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// Hugging Face's fp16 guard after each residual add: clamp to the largest finite value, or
/// 1000 below it once an infinity has appeared. A no-op for other dtypes.
pub fn clamp_fp16<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    if x.dtype() != DType::F16 {
        return x;
    }
    let max = f64::from(half::f16::MAX.to_f32());
    let has_inf = x.clone().is_inf().any().into_scalar().to_bool();
    let limit = if has_inf { max - 1000.0 } else { max };
    x.clamp(-limit, limit)
}

/// Original T5 feed-forward (`DenseReluDense`): `wo(relu(wi(x)))`.
#[derive(Module, Debug)]
pub struct T5DenseActDense<B: Backend> {
    /// `d_model → d_ff`.
    pub wi: Linear<B>,
    /// `d_ff → d_model`.
    pub wo: Linear<B>,
}

/// T5 v1.1 feed-forward (`DenseReluDense` with `wi_0`/`wi_1`): `wo(gelu_new(wi_0(x)) * wi_1(x))`.
#[derive(Module, Debug)]
pub struct T5DenseGatedActDense<B: Backend> {
    /// Gate and linear projections side by side, `d_model → 2*d_ff` (HF `wi_0` then `wi_1`):
    /// one GEMM over the activations instead of two.
    pub wi: Linear<B>,
    /// `d_ff → d_model`.
    pub wo: Linear<B>,
}

/// The feed-forward half of a T5 block, by `feed_forward_proj`.
// One per block, and the weights live behind shared handles: the variant size is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum T5FeedForward<B: Backend> {
    /// `"relu"`.
    Relu(T5DenseActDense<B>),
    /// `"gated-gelu"` (`gelu_new`, the tanh approximation).
    GatedGelu(T5DenseGatedActDense<B>),
}

impl<B: Backend> T5FeedForward<B> {
    /// Applies the feed-forward network to `x` (`[batch, len, d_model]`).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            Self::Relu(ff) => ff.wo.forward(relu(ff.wi.forward(x))),
            Self::GatedGelu(ff) => {
                let both = ff.wi.forward(x);
                let d_ff = both.dims()[2] / 2;
                let gate = gelu_approximate(both.clone().narrow(2, 0, d_ff));
                ff.wo.forward(gate * both.narrow(2, d_ff, d_ff))
            }
        }
    }
}

/// One encoder block: `x + attn(norm(x))`, then `x + ff(norm(x))`.
#[derive(Module, Debug)]
pub struct T5Block<B: Backend> {
    /// Norm before attention (HF `layer.0.layer_norm`).
    pub attention_norm: T5LayerNorm<B>,
    /// Self-attention (HF `layer.0.SelfAttention`).
    pub attention: T5Attention<B>,
    /// Norm before the feed-forward (HF `layer.1.layer_norm`).
    pub feed_forward_norm: T5LayerNorm<B>,
    /// Feed-forward (HF `layer.1.DenseReluDense`).
    pub feed_forward: T5FeedForward<B>,
}

impl<B: Backend> T5Block<B> {
    /// Applies the block to a padded batch; `bias` is the position bias plus padding mask.
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let x =
            clamp_fp16(x.clone() + self.attention.forward(self.attention_norm.forward(x), bias));
        clamp_fp16(x.clone() + self.feed_forward.forward(self.feed_forward_norm.forward(x)))
    }

    /// Applies the block to packed sequences (see [`T5Encoder::forward_packed`]).
    pub fn forward_packed(
        &self,
        x: Tensor<B, 3>,
        runs: &[SequenceRun],
        biases: &[Tensor<B, 4>],
    ) -> Tensor<B, 3> {
        let attention =
            self.attention
                .forward_packed(self.attention_norm.forward(x.clone()), runs, biases);
        let x = clamp_fp16(x + attention);
        clamp_fp16(x.clone() + self.feed_forward.forward(self.feed_forward_norm.forward(x)))
    }
}

/// `count` consecutive sequences of `len` tokens each, in a packed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceRun {
    /// Tokens per sequence.
    pub len: usize,
    /// Number of sequences.
    pub count: usize,
}

impl SequenceRun {
    /// Groups sequence lengths, already sorted so that equal lengths are adjacent, into runs.
    /// Zero lengths are skipped.
    pub fn from_lengths(lengths: impl IntoIterator<Item = usize>) -> Vec<SequenceRun> {
        let mut runs: Vec<SequenceRun> = Vec::new();
        for len in lengths.into_iter().filter(|&len| len > 0) {
            match runs.last_mut() {
                Some(run) if run.len == len => run.count += 1,
                _ => runs.push(SequenceRun { len, count: 1 }),
            }
        }
        runs
    }
}

/// The T5 encoder stack.
#[derive(Module, Debug)]
pub struct T5Encoder<B: Backend> {
    /// Token embedding, `[vocab_size, d_model]` (HF `shared` / `encoder.embed_tokens`).
    pub embed_tokens: Embedding<B>,
    /// The blocks. The first one owns a relative position bias table; in UMT5 every one does.
    /// A block without a table uses the bias of the last block before it that has one.
    pub blocks: Vec<T5Block<B>>,
    /// Norm after the last block.
    pub final_layer_norm: T5LayerNorm<B>,
}

impl<B: Backend> T5Encoder<B> {
    /// Encodes `input_ids` (`[batch, len]`) into hidden states `[batch, len, d_model]`.
    ///
    /// `padding` (`[batch, len]`, `true` at padded positions) keeps padded keys out of every
    /// query's attention by adding the most negative `f32`, as Hugging Face does with
    /// `torch.finfo(float32).min`. Rows at padded positions are computed but meaningless.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 3> {
        let [batch, len] = input_ids.dims();
        let device = input_ids.device();
        let mask = padding.map(|padding| {
            Tensor::<B, 2>::zeros([batch, len], &device)
                .mask_fill(padding, f32::MIN)
                .reshape([batch, 1, 1, len])
        });
        let buckets = self.blocks[0].attention.bucket_indices(len, &device);
        let mut bias: Option<Tensor<B, 4>> = None;
        let mut x = self.embed_tokens.forward(input_ids);
        for block in &self.blocks {
            if block.attention.relative_attention_bias.is_some() {
                let own = block.attention.gather_bias(buckets.clone(), len);
                bias = Some(match &mask {
                    Some(mask) => own + mask.clone(),
                    None => own,
                });
            }
            let bias = bias.clone().expect("the first block has a bias table");
            x = block.forward(x, bias);
        }
        self.final_layer_norm.forward(x)
    }

    /// Encodes sequences packed without padding: `input_ids` is `[1, total]`, the tokens of
    /// the sequences of `runs` one after another; returns `[1, total, d_model]`.
    ///
    /// Every row-wise step (embedding, norms, projections, feed-forward) runs on all tokens at
    /// once; attention runs per run of equal-length sequences. Nothing is spent on padding,
    /// and on the CPU backend each sequence's result is bit-identical to encoding it alone,
    /// whatever else is in the batch.
    ///
    /// # Panics
    /// If there are no tokens, or the lengths of `runs` do not add up to `total`.
    pub fn forward_packed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        runs: &[SequenceRun],
    ) -> Tensor<B, 3> {
        let [_, total] = input_ids.dims();
        let covered: usize = runs.iter().map(|run| run.len * run.count).sum();
        assert_eq!(
            covered, total,
            "runs cover {covered} tokens, the input has {total}"
        );
        assert!(total > 0, "nothing to encode");
        let device = input_ids.device();
        let lens: Vec<usize> = runs.iter().map(|run| run.len).collect();
        let mut biases: Vec<Tensor<B, 4>> = Vec::new();
        let mut x = self.embed_tokens.forward(input_ids);
        for block in &self.blocks {
            if block.attention.relative_attention_bias.is_some() {
                biases = block.attention.compute_biases(&lens, &device);
            }
            assert!(!biases.is_empty(), "the first block has a bias table");
            x = block.forward_packed(x, runs, &biases);
        }
        self.final_layer_norm.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::SequenceRun;

    #[test]
    fn runs_group_adjacent_equal_lengths() {
        let run = |len, count| SequenceRun { len, count };
        assert_eq!(
            SequenceRun::from_lengths([0, 3, 3, 5, 7, 7, 7]),
            vec![run(3, 2), run(5, 1), run(7, 3)]
        );
        assert!(SequenceRun::from_lengths([0, 0]).is_empty());
    }
}
