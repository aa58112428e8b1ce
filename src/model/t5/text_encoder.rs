//! [`T5TextEncoder`]: the T5 (or UMT5) encoder and its tokenizer behind the [`TextEncoder`]
//! trait.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;

use super::{load_encoder, SequenceRun, T5Config, T5Encoder, T5Tokenizer};
use crate::model::weights::Weights;
use crate::model::{
    dispatch, BackendJob, CpuBackend, DeviceSpec, ModelError, ModelFingerprint, Precision,
    TextEncoder,
};

/// Everything loaded from a model directory; shared by all clones of a [`T5TextEncoder`].
#[derive(Debug)]
struct Loaded<B: Backend> {
    /// The model directory, for the fingerprint.
    dir: PathBuf,
    /// How batches are laid out for this backend.
    layout: BatchLayout,
    /// Tokens per padded group, padding included ([`PADDED_GROUP_TOKENS`]).
    group_tokens: usize,
    config: T5Config,
    model: T5Encoder<B>,
    tokenizer: T5Tokenizer,
    device: B::Device,
    /// Held while a batch runs on an accelerator: every worker thread encodes through the
    /// same device, and batches running side by side would each hold their activations (for
    /// t5-11b, tens of GB per group) without making the device any faster. The workers do
    /// their host work (tokenizing, fp16 conversion, pickling, tar writing) meanwhile.
    device_turn: std::sync::Mutex<()>,
}

/// A T5 text encoder with its tokenizer, loaded from a Hugging Face model directory; UMT5
/// when its `config.json` says `"model_type": "umt5"` (see [`super::ModelType`]).
///
/// Cloning is cheap (the weights are shared), and the encoder is `Send + Sync`, so each
/// worker thread can hold a clone.
#[derive(Debug)]
pub struct T5TextEncoder<B: Backend> {
    loaded: Arc<Loaded<B>>,
}

impl<B: Backend> Clone for T5TextEncoder<B> {
    fn clone(&self) -> Self {
        Self {
            loaded: Arc::clone(&self.loaded),
        }
    }
}

impl<B: Backend> T5TextEncoder<B> {
    /// Loads `config.json`, `tokenizer.json` and the weights of `model_dir` onto `device`.
    ///
    /// Weights come from `model.safetensors`, sharded `model-*.safetensors` with
    /// `model.safetensors.index.json`, or PyTorch `pytorch_model.bin[.reduced]`. Everything
    /// is validated here (files, config values, every tensor's presence, shape and type), so
    /// encoding cannot fail afterwards.
    pub fn load(model_dir: &Path, device: &B::Device) -> Result<Self, ModelError> {
        if !model_dir.is_dir() {
            return Err(ModelError::MissingFile {
                what: "model directory",
                path: model_dir.to_owned(),
            });
        }
        let config = T5Config::load(&model_dir.join("config.json"))?;
        let tokenizer_path = model_dir.join("tokenizer.json");
        let tokenizer = T5Tokenizer::load(&tokenizer_path)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(ModelError::Tokenizer {
                path: tokenizer_path,
                message: format!(
                    "{} tokens, more than the model's vocab_size {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let weights = Weights::open_dir(model_dir)?;
        let model = load_encoder(&config, &weights, device)?;
        tracing::debug!(
            dir = %model_dir.display(),
            weights = %weights.origin().display(),
            model_type = config.model_type.as_str(),
            layers = config.num_layers,
            d_model = config.d_model,
            "loaded T5 encoder"
        );
        // On the CPU, packing is fastest and exact; on a GPU, per-length attention launches
        // would dominate, so length-sorted groups are padded and masked instead.
        let layout = if std::any::TypeId::of::<B>() == std::any::TypeId::of::<CpuBackend>() {
            BatchLayout::Packed
        } else {
            BatchLayout::PaddedGroups
        };
        Ok(Self {
            loaded: Arc::new(Loaded {
                dir: model_dir.to_owned(),
                layout,
                group_tokens: PADDED_GROUP_TOKENS,
                config,
                model,
                tokenizer,
                device: device.clone(),
                device_turn: std::sync::Mutex::new(()),
            }),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &T5Config {
        &self.loaded.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &T5Tokenizer {
        &self.loaded.tokenizer
    }

    /// The Burn module.
    pub fn model(&self) -> &T5Encoder<B> {
        &self.loaded.model
    }

    /// The batch layout this encoder uses.
    pub fn layout(&self) -> BatchLayout {
        self.loaded.layout
    }

    /// The same encoder with another batch layout (both give each sequence's own result).
    pub fn with_layout(&self, layout: BatchLayout) -> Self {
        self.with(layout, self.loaded.group_tokens)
    }

    /// The same encoder with padded groups of at most `group_tokens` tokens (at least one
    /// sequence per group, however long).
    pub fn with_group_tokens(&self, group_tokens: usize) -> Self {
        self.with(self.loaded.layout, group_tokens)
    }

    fn with(&self, layout: BatchLayout, group_tokens: usize) -> Self {
        let l = &self.loaded;
        Self {
            loaded: Arc::new(Loaded {
                dir: l.dir.clone(),
                layout,
                group_tokens,
                config: l.config.clone(),
                model: l.model.clone(),
                tokenizer: l.tokenizer.clone(),
                device: l.device.clone(),
                device_turn: std::sync::Mutex::new(()),
            }),
        }
    }

    /// Length-sorted groups, each padded to its longest sequence and masked as Hugging Face
    /// does; a group holds at most `group_tokens` ([`PADDED_GROUP_TOKENS`]) tokens after
    /// padding, so padding stays a small fraction of the work.
    ///
    /// Each group is queued on the device before the previous one is read back, so the copy
    /// to the host and its conversion overlap the next group's kernels.
    fn encode_padded_groups(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        let mut order: Vec<usize> = (0..batch.len()).filter(|&i| !batch[i].is_empty()).collect();
        let mut out = vec![Vec::new(); batch.len()];
        order.sort_by_key(|&i| batch[i].len());
        let d = self.loaded.config.d_model;
        let device = &self.loaded.device;
        // a panic elsewhere leaves nothing half-done behind this lock: carry on
        let _turn = self
            .loaded
            .device_turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let read_back =
            |out: &mut Vec<Vec<f32>>, (hidden, group, len): (Tensor<B, 3>, &[usize], usize)| {
                let values = hidden
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("converted to f32");
                for (row, &i) in group.iter().enumerate() {
                    let at = row * len * d;
                    out[i] = values[at..at + batch[i].len() * d].to_vec();
                }
            };
        let mut pending = None;
        let mut start = 0;
        while start < order.len() {
            // sorted ascending: the group's last sequence is its longest
            let mut end = start + 1;
            while end < order.len()
                && batch[order[end]].len().next_multiple_of(PAD_MULTIPLE) * (end + 1 - start)
                    <= self.loaded.group_tokens
            {
                end += 1;
            }
            let group = &order[start..end];
            // a few distinct shapes keep GPU kernel compilation and autotuning to a minimum
            let len = batch[group[group.len() - 1]]
                .len()
                .next_multiple_of(PAD_MULTIPLE);
            let mut ids = vec![0i64; group.len() * len];
            let mut pad = vec![true; group.len() * len];
            for (row, &i) in group.iter().enumerate() {
                for (j, &id) in batch[i].iter().enumerate() {
                    ids[row * len + j] = i64::from(id);
                    pad[row * len + j] = false;
                }
            }
            let input =
                Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [group.len(), len]), device);
            let padding =
                Tensor::<B, 2, Bool>::from_data(TensorData::new(pad, [group.len(), len]), device);
            let hidden = self.loaded.model.forward(input, Some(padding));
            if let Some(previous) = pending.replace((hidden, group, len)) {
                read_back(&mut out, previous);
            }
            start = end;
        }
        if let Some(last) = pending {
            read_back(&mut out, last);
        }
        out
    }

    fn encode_packed(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        let mut order: Vec<usize> = (0..batch.len()).filter(|&i| !batch[i].is_empty()).collect();
        let mut out = vec![Vec::new(); batch.len()];
        if order.is_empty() {
            return out;
        }
        order.sort_by_key(|&i| batch[i].len());
        let runs = SequenceRun::from_lengths(order.iter().map(|&i| batch[i].len()));
        let vocab = self.loaded.config.vocab_size;
        let ids: Vec<i64> = order
            .iter()
            .flat_map(|&i| batch[i].iter())
            .map(|&id| {
                assert!((id as usize) < vocab, "token id {id} ≥ vocab_size {vocab}");
                i64::from(id)
            })
            .collect();
        let total = ids.len();
        let input =
            Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, total]), &self.loaded.device);
        let hidden = self.loaded.model.forward_packed(input, &runs);
        let values = hidden
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("converted to f32");
        let d = self.loaded.config.d_model;
        let mut start = 0;
        for &i in &order {
            let end = start + batch[i].len() * d;
            out[i] = values[start..end].to_vec();
            start = end;
        }
        out
    }
}

impl<B: Backend> TextEncoder for T5TextEncoder<B> {
    /// Token ids of a raw caption (see [`T5Tokenizer::encode`]): stripped, `</s>` appended,
    /// at most 512 ids.
    fn tokenize(&self, caption: &str) -> Vec<u32> {
        self.loaded.tokenizer.encode(caption)
    }

    /// Encodes a batch of token id sequences (any lengths; the reference never exceeds 512).
    ///
    /// Returns, per sequence, its `len × d_model` fp32 rows, row-major (an empty sequence
    /// gives an empty vector). Each result equals encoding that sequence alone: the batch is
    /// packed without padding (sorted by length, attention per group of equal lengths; see
    /// [`T5Encoder::forward_packed`]), so no compute goes to padding, and on the CPU backend
    /// the result is bit-identical whatever else is in the batch.
    ///
    /// # Panics
    /// If an id is not below the model's `vocab_size` (ids from [`TextEncoder::tokenize`]
    /// always are; this is checked at load).
    fn encode_batch(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        match self.loaded.layout {
            BatchLayout::Packed => self.encode_packed(batch),
            BatchLayout::PaddedGroups => self.encode_padded_groups(batch),
        }
    }

    fn d_model(&self) -> usize {
        self.loaded.config.d_model
    }

    /// The fingerprint of the directory the encoder was loaded from (read now, not at load).
    fn fingerprint(&self) -> Result<ModelFingerprint, ModelError> {
        ModelFingerprint::of_dir(&self.loaded.dir)
    }
}

/// Loads the T5 or UMT5 encoder of `model_dir` (by its `model_type`) on the backend that `device` and `precision` select
/// (see [`dispatch`]), with the backend type hidden behind the trait.
pub fn load(
    model_dir: &Path,
    device: DeviceSpec,
    precision: Precision,
) -> Result<Arc<dyn TextEncoder>, ModelError> {
    struct Load<'a>(&'a Path);
    impl BackendJob for Load<'_> {
        type Output = Result<Arc<dyn TextEncoder>, ModelError>;
        fn run<B: Backend>(self, device: B::Device) -> Self::Output {
            Ok(Arc::new(T5TextEncoder::<B>::load(self.0, &device)?))
        }
    }
    dispatch(device, precision, Load(model_dir))?
}

/// Tokens (padding included) per padded group on accelerators.
pub const PADDED_GROUP_TOKENS: usize = 32 * 1024;

/// Padded groups are padded to a multiple of this many tokens.
pub const PAD_MULTIPLE: usize = 32;

/// How a batch of sequences is laid out for the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchLayout {
    /// All tokens packed without padding; attention per run of equal lengths (CPU).
    Packed,
    /// Length-sorted groups padded to their longest sequence, with a key mask (GPU).
    PaddedGroups,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn text_encoder_is_send_and_sync() {
        assert_send_sync::<T5TextEncoder<CpuBackend>>();
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/t5-tiny")
    }

    #[test]
    fn loaded_behind_the_trait_it_is_the_same_encoder() {
        let dir = fixture();
        let concrete = T5TextEncoder::<CpuBackend>::load(&dir, &Default::default()).unwrap();
        let shared = load(&dir, DeviceSpec::Cpu, Precision::Fp32).unwrap();
        let ids = shared.tokenize("  A red car at night. ");
        assert_eq!(ids, concrete.tokenize("  A red car at night. "));
        assert_eq!(shared.d_model(), 16);
        assert_eq!(shared.encode_batch(&[&ids]), concrete.encode_batch(&[&ids]));
        assert_eq!(
            shared.fingerprint().unwrap(),
            ModelFingerprint::of_dir(&dir).unwrap()
        );
        assert!(load(&dir, DeviceSpec::Cpu, Precision::Fp16).is_err());
    }

    #[test]
    fn padded_groups_equal_packed() {
        let dir = fixture();
        let packed = T5TextEncoder::<CpuBackend>::load(&dir, &Default::default()).unwrap();
        assert_eq!(packed.layout(), BatchLayout::Packed);
        let caps: Vec<Vec<u32>> = (0..40)
            .map(|i| packed.tokenize(&"a caption with words ".repeat(i % 13 + 1)))
            .collect();
        let mut seqs: Vec<&[u32]> = caps.iter().map(Vec::as_slice).collect();
        seqs.insert(7, &[]);
        let a = packed.encode_batch(&seqs);
        // one group for the whole batch, then groups of a few sequences, each queued before
        // the one before it is read back
        for group_tokens in [PADDED_GROUP_TOKENS, 200] {
            let padded = packed
                .with_layout(BatchLayout::PaddedGroups)
                .with_group_tokens(group_tokens);
            let b = padded.encode_batch(&seqs);
            assert_eq!(b.len(), seqs.len());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x.len(), y.len(), "sequence {i}, groups of {group_tokens}");
                let max = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    max < 1e-5,
                    "sequence {i}, groups of {group_tokens}: max diff {max}"
                );
            }
        }
        assert!(a[7].is_empty());
    }
}
