//! UMT5 (`"model_type": "umt5"`) on the `umt5-tiny` fixture (tests/data/umt5-tiny, made by its
//! `make_fixture.py`): parity with Hugging Face `UMT5EncoderModel` within the T5 tolerances,
//! packed batches, the checkpoint forms (`UMT5ForConditionalGeneration`, sharded), load errors,
//! and the binary end to end (`encode`, `shard`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use half::{bf16, f16};
use safetensors::Dtype;
use safetensors::SafeTensors;
use serde_json::Value;
use shardflow::model::t5::{BatchLayout, ModelType, T5TextEncoder};
use shardflow::model::{to_f16, CpuBackend, ModelError, TextEncoder};

use crate::common::*;
use crate::t5_parity::{
    assert_close, f16_ulp, read_safetensors, stored_as_f32, ulps, write_safetensors, Reference,
    Stored,
};

type Encoder = T5TextEncoder<CpuBackend>;

fn fixture() -> PathBuf {
    data("umt5-tiny")
}

fn load(dir: &Path) -> Result<Encoder, ModelError> {
    T5TextEncoder::load(dir, &Default::default())
}

fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| load(&fixture()).expect("umt5-tiny loads"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `(raw caption, ids Hugging Face gave)`: t5-tiny's 26 captions, which the fixture reuses.
fn captions() -> Vec<(String, Vec<u32>)> {
    let raw = read_json(&data("t5-tiny/captions.json"));
    let tokens = read_json(&fixture().join("expected/tokens.json"));
    let (raw, tokens) = (raw.as_array().unwrap(), tokens.as_array().unwrap());
    assert_eq!((raw.len(), tokens.len()), (26, 26));
    raw.iter()
        .zip(tokens)
        .map(|(caption, t)| {
            let ids = t["input_ids"].as_array().unwrap();
            let ids = ids.iter().map(|v| v.as_u64().unwrap() as u32).collect();
            (caption.as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Asserts each caption's rows match Hugging Face's (fp32: `1e-4 + 1e-4·|x|`; after the fp16
/// cast: equal, 1 ulp, or within the fp32 difference); returns the max fp32 `|Δ|`.
fn assert_matches_hf(what: &str, rows: &[Vec<f32>]) -> f64 {
    let expected = std::fs::read(fixture().join("expected/embeddings.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&expected).unwrap();
    let (mut max_diff, mut elements) = (0f64, 0usize);
    let (mut one_ulp, mut more) = (0usize, 0usize);
    for (i, (got, (_, ids))) in rows.iter().zip(captions()).enumerate() {
        let want32 = expected.tensor(&format!("caption_{i:03}.f32")).unwrap();
        assert_eq!(want32.shape(), &[ids.len(), 16]);
        let want32 = f32_values(want32.data());
        let want64: Vec<f64> = want32.iter().map(|&v| f64::from(v)).collect();
        max_diff = max_diff.max(assert_close(&format!("{what} caption {i}"), got, &want64));
        let want16: Vec<f16> = expected
            .tensor(&format!("caption_{i:03}.f16"))
            .unwrap()
            .data()
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]))
            .collect();
        for (j, (g, w)) in to_f16(got).into_iter().zip(want16).enumerate() {
            let d = ulps(g, w);
            let explained =
                (g.to_f32() - w.to_f32()).abs() <= (got[j] - want32[j]).abs() + f16_ulp(w) + 1e-4;
            assert!(
                d <= 2 || explained,
                "{what} caption {i} f16[{j}]: got {g}, want {w}"
            );
            one_ulp += usize::from(d == 1);
            more += usize::from(d > 1);
        }
        elements += got.len();
    }
    eprintln!(
        "UMT5 HF parity ({what}): max |Δ| fp32 = {max_diff:.3e}; fp16 of {elements} elements: \
         {one_ulp} 1 ulp off, {more} more (within 2 ulp or the fp32 difference), rest identical"
    );
    max_diff
}

fn encode_each(enc: &Encoder) -> Vec<Vec<f32>> {
    captions()
        .iter()
        .map(|(_, ids)| enc.encode_batch(&[ids]).pop().unwrap())
        .collect()
}

#[test]
fn config_is_umt5_with_a_bias_table_in_every_layer() {
    let enc = encoder();
    assert_eq!(enc.config().model_type, ModelType::Umt5);
    assert_eq!(enc.config().num_layers, 3);
    assert!(enc
        .model()
        .blocks
        .iter()
        .all(|b| b.attention.relative_attention_bias.is_some()));
}

#[test]
fn token_ids_match_hf() {
    let enc = encoder();
    for (i, (caption, want)) in captions().iter().enumerate() {
        assert_eq!(&enc.tokenize(caption), want, "caption {i}: {caption:?}");
    }
}

#[test]
fn embeddings_match_hf_fp32_and_fp16() {
    assert_matches_hf("one at a time", &encode_each(encoder()));
}

/// Packed: a caption's rows do not depend on what else is in the batch (bit-identical on the
/// CPU); the padded, masked layout (what GPUs use) agrees with it and with Hugging Face.
#[test]
fn packed_batch_equals_one_at_a_time() {
    let enc = encoder();
    let all = captions();
    let ids: Vec<&[u32]> = all.iter().map(|(_, ids)| ids.as_slice()).collect();
    let alone = encode_each(enc);
    let batched = enc.encode_batch(&ids);
    assert_eq!(batched, alone, "batch of 26 vs one at a time");
    let chunked: Vec<Vec<f32>> = ids
        .chunks(8)
        .flat_map(|chunk| enc.encode_batch(chunk))
        .collect();
    assert_eq!(chunked, alone, "chunks of 8 vs one at a time");
    let reversed: Vec<&[u32]> = ids.iter().rev().copied().collect();
    let mut back = enc.encode_batch(&reversed);
    back.reverse();
    assert_eq!(back, alone, "reversed batch");

    let padded = enc.with_layout(BatchLayout::PaddedGroups);
    let rows = padded.encode_batch(&ids);
    let mut max = 0f32;
    for (i, (p, a)) in rows.iter().zip(&alone).enumerate() {
        assert_eq!(p.len(), a.len(), "caption {i}");
        for (x, y) in p.iter().zip(a) {
            max = max.max((x - y).abs());
        }
    }
    assert!(max < 1e-5, "padded groups vs packed: max |Δ| {max}");
    assert_matches_hf("padded groups", &rows);
}

/// A model directory in a temp dir: the fixture's tokenizer, `config`, and weight files.
fn model_dir(config: &str, files: &[(&str, &[(String, Stored)])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    std::fs::copy(
        fixture().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    for (name, tensors) in files {
        write_safetensors(&dir.path().join(name), tensors);
    }
    dir
}

fn fixture_config() -> String {
    std::fs::read_to_string(fixture().join("config.json")).unwrap()
}

fn fixture_tensors() -> Vec<(String, Stored)> {
    read_safetensors(&fixture().join("model.safetensors"))
}

/// `UMT5ForConditionalGeneration` as saved (decoder, untied `lm_head`, the embedding under
/// both names) and the encoder sharded over two files: the same outputs, bit for bit.
#[test]
fn full_and_sharded_checkpoints_give_the_same_outputs() {
    let want = encode_each(encoder());
    let mut full = fixture_tensors();
    let find = |tensors: &[(String, Stored)], name: &str| {
        tensors.iter().find(|(n, _)| n == name).unwrap().1.clone()
    };
    let shared = find(&full, "shared.weight");
    let bias = find(
        &full,
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    );
    let q = find(&full, "encoder.block.0.layer.0.SelfAttention.q.weight");
    for (name, t) in [
        ("encoder.embed_tokens.weight", &shared),
        ("decoder.embed_tokens.weight", &shared),
        ("lm_head.weight", &shared),
        (
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            &bias,
        ),
        ("decoder.block.0.layer.1.EncDecAttention.q.weight", &q),
    ] {
        full.push((name.to_owned(), t.clone()));
    }
    let config = fixture_config().replace("UMT5EncoderModel", "UMT5ForConditionalGeneration");
    let dir = model_dir(&config, &[("model.safetensors", &full)]);
    assert_eq!(encode_each(&load(dir.path()).unwrap()), want);

    let tensors = fixture_tensors();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut weight_map = serde_json::Map::new();
    for (file, part) in names.iter().zip([first, second]) {
        for (name, _) in part {
            weight_map.insert(name.clone(), Value::from(*file));
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    let dir = model_dir(&fixture_config(), &[(names[0], first), (names[1], second)]);
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    assert_eq!(encode_each(&load(dir.path()).unwrap()), want);
}

/// The f64 reference encoder (each layer with its own table) agrees with Hugging Face; a
/// BF16 checkpoint (how umt5-xxl is often shipped) loads and matches it on the rounded weights.
#[test]
fn f64_reference_and_a_bf16_checkpoint() {
    let tensors = fixture_tensors();
    let reference = Reference::from_files(&fixture().join("config.json"), &tensors);
    let rows: Vec<Vec<f32>> = captions()
        .iter()
        .map(|(_, ids)| {
            reference
                .forward(ids)
                .into_iter()
                .map(|v| v as f32)
                .collect()
        })
        .collect();
    assert_matches_hf("f64 reference", &rows);

    let rounded: Vec<(String, Stored)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let bytes = stored_as_f32(&t)
                .into_iter()
                .flat_map(|v| bf16::from_f32(v).to_le_bytes())
                .collect();
            let shape = t.shape;
            (
                name,
                Stored {
                    dtype: Dtype::BF16,
                    shape,
                    bytes,
                },
            )
        })
        .collect();
    let dir = model_dir(&fixture_config(), &[("model.safetensors", &rounded)]);
    let enc = load(dir.path()).unwrap();
    let reference = Reference::from_files(&dir.path().join("config.json"), &rounded);
    let mut max = 0f64;
    for (i, (_, ids)) in captions().iter().enumerate() {
        let got = enc.encode_batch(&[ids]).pop().unwrap();
        max = max.max(assert_close(
            &format!("BF16 caption {i}"),
            &got,
            &reference.forward(ids),
        ));
    }
    eprintln!("UMT5 BF16 checkpoint vs f64 reference: max |Δ| = {max:.3e}");
}

fn load_error(dir: &Path) -> (ModelError, String) {
    let err = load(dir).expect_err("load must fail");
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn load_errors_name_the_tensor_or_file() {
    let table = |i: usize| {
        format!("encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight")
    };
    let tensors = fixture_tensors();

    // the UMT5 checkpoint read as T5: the tables of layers 1 and 2 are not used
    let dir = model_dir(
        &fixture_config().replace("\"umt5\"", "\"t5\""),
        &[("model.safetensors", &tensors)],
    );
    let (err, msg) = load_error(dir.path());
    assert!(
        matches!(err, ModelError::UnusedTensors { count: 2, .. }),
        "{msg}"
    );
    assert!(msg.contains(&table(1)) && msg.contains(&table(2)), "{msg}");

    // a UMT5 checkpoint without layer 2's table
    let missing: Vec<(String, Stored)> = tensors
        .iter()
        .filter(|(n, _)| *n != table(2))
        .cloned()
        .collect();
    let dir = model_dir(&fixture_config(), &[("model.safetensors", &missing)]);
    let (err, msg) = load_error(dir.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{msg}");
    assert!(
        msg.contains(&table(2)) && msg.contains("model.safetensors"),
        "{msg}"
    );

    // layer 1's table with 16 buckets instead of 32
    let mut short = tensors.clone();
    let entry = short.iter_mut().find(|(n, _)| *n == table(1)).unwrap();
    entry.1.shape = vec![16, 4];
    entry.1.bytes.truncate(16 * 4 * 4);
    let dir = model_dir(&fixture_config(), &[("model.safetensors", &short)]);
    let (err, msg) = load_error(dir.path());
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{msg}");
    assert!(msg.contains(&table(1)) && msg.contains("[16, 4]"), "{msg}");

    // an architecture this crate does not implement
    let dir = model_dir(
        &fixture_config().replace("\"umt5\"", "\"mt5-other\""),
        &[("model.safetensors", &tensors)],
    );
    let (err, msg) = load_error(dir.path());
    assert!(matches!(err, ModelError::UnknownModelType { .. }), "{msg}");
    assert!(
        msg.contains("\"mt5-other\"") && msg.contains("config.json") && msg.contains("\"umt5\""),
        "{msg}"
    );
}

/// `shardflow encode --t5-model tests/data/umt5-tiny` writes Hugging Face's embeddings.
#[test]
fn encode_command_matches_hf() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture();
    let captions_path = data("t5-tiny/captions.json");
    let out = shardflow(
        dir.path(),
        &[
            "encode",
            "--t5-model",
            model.to_str().unwrap(),
            "--captions",
            captions_path.to_str().unwrap(),
            "--output",
            "out.safetensors",
            "--batch-size",
            "8",
        ],
    );
    assert_ok(&out);
    let bytes = std::fs::read(dir.path().join("out.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let rows: Vec<Vec<f32>> = (0..26)
        .map(|i| f32_values(file.tensor(&format!("caption_{i:05}")).unwrap().data()))
        .collect();
    assert_matches_hf("shardflow encode", &rows);
}

fn tars(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            tars(&path, out);
        } else if path.extension().is_some_and(|x| x == "tar") {
            out.push(path);
        }
    }
}

/// `shardflow shard` of the sample dataset with the UMT5 model: the same samples and counts
/// as with T5, readable by Python, with different (UMT5) embeddings in the tars.
#[test]
fn shard_of_the_sample_dataset_with_umt5_completes() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&data("sample-dataset"), &dir.path().join("sample-dataset"));
    let input = dir.path().join("sample-dataset");
    let out = shard_with_model(dir.path(), &input, "out", &fixture(), &["--workers", "2"]);
    assert_ok(&out);
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert_eq!(c["written"], 23);
    assert_eq!(c["windows_embedded"], 31);
    assert_eq!(c["tokens_embedded"], 2186);
    let n = run_tool(
        "read_dataset.py",
        ["readers", dir.path().join("out/v0").to_str().unwrap()],
    );
    assert_eq!(n.trim(), "23");
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    tars(&dir.path().join("out/v0"), &mut ours);
    tars(&data("sample-dataset-expected/v0"), &mut reference);
    ours.sort();
    reference.sort();
    assert_eq!(ours.len(), reference.len());
    assert!(!ours.is_empty());
    for (a, b) in ours.iter().zip(&reference) {
        assert_eq!(a.file_name(), b.file_name());
        assert_ne!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{}: the T5 embeddings",
            a.display()
        );
    }
}
