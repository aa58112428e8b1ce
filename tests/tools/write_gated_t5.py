#!/usr/bin/env python3
"""A tiny random T5 v1.1 encoder (gated-GELU, untied embeddings) for the oracle test: written once
as one model.safetensors and once sharded into two files with a model.safetensors.index.json,
each with its config.json and a copy of the tokenizer. Needs numpy and safetensors.

    write_gated_t5.py SINGLE_DIR SHARDED_DIR TOKENIZER_JSON

Used by oracle.rs.
"""
import json, shutil, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file

# argv: OUT_SINGLE OUT_SHARDED TOKENIZER_JSON
single, sharded, tok = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
d_model, d_kv, heads, d_ff, layers, vocab = 24, 8, 6, 40, 3, 32128
cfg = {"architectures": ["T5EncoderModel"], "d_ff": d_ff, "d_kv": d_kv, "d_model": d_model,
       "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
       "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
       "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": layers,
       "num_heads": heads, "num_layers": layers, "pad_token_id": 0, "relative_attention_max_distance": 128,
       "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "vocab_size": vocab}
rng = np.random.default_rng(20240611)
inner = heads * d_kv


def n(shape, std):
    return (rng.standard_normal(shape) * std).astype(np.float32)


t = {"shared.weight": n((vocab, d_model), 1.0)}
t["encoder.embed_tokens.weight"] = t["shared.weight"].copy()
for i in range(layers):
    p = f"encoder.block.{i}.layer.0."
    t[p + "SelfAttention.q.weight"] = n((inner, d_model), (d_model * d_kv) ** -0.5)
    t[p + "SelfAttention.k.weight"] = n((inner, d_model), d_model ** -0.5)
    t[p + "SelfAttention.v.weight"] = n((inner, d_model), d_model ** -0.5)
    t[p + "SelfAttention.o.weight"] = n((d_model, inner), inner ** -0.5)
    if i == 0:
        t[p + "SelfAttention.relative_attention_bias.weight"] = n((32, heads), 1.0)
    t[p + "layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
    p = f"encoder.block.{i}.layer.1."
    t[p + "DenseReluDense.wi_0.weight"] = n((d_ff, d_model), d_model ** -0.5)
    t[p + "DenseReluDense.wi_1.weight"] = n((d_ff, d_model), d_model ** -0.5)
    t[p + "DenseReluDense.wo.weight"] = n((d_model, d_ff), d_ff ** -0.5)
    t[p + "layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
t["encoder.final_layer_norm.weight"] = rng.uniform(0.5, 1.5, d_model).astype(np.float32)
for out in (single, sharded):
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    shutil.copy(tok, out / "tokenizer.json")
save_file(t, str(single / "model.safetensors"), metadata={"format": "pt"})
keys = sorted(t)
parts = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
wmap = {}
for j, ks in enumerate(parts):
    fname = f"model-{j + 1:05d}-of-{len(parts):05d}.safetensors"
    save_file({k: t[k] for k in ks}, str(sharded / fname), metadata={"format": "pt"})
    wmap.update({k: fname for k in ks})
total = sum(v.nbytes for v in t.values())
(sharded / "model.safetensors.index.json").write_text(
    json.dumps({"metadata": {"total_size": total}, "weight_map": wmap}, indent=2))
print("wrote", single, sharded)
