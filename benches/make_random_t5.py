#!/usr/bin/env python3
"""Write a random-weight T5 *encoder* model directory in Hugging Face format (for speed tests).

    python make_random_t5.py OUT_DIR --shape small|base|large|tiny [--seed S] [--no-check]

OUT_DIR gets:
  config.json              original-T5 style (feed_forward_proj "relu", not gated), the chosen shape
  model.safetensors        shared.weight + encoder.* only (no decoder / lm_head); fp32; the encoder's
                           embed_tokens is tied to shared.weight (as in save_pretrained), not stored twice
  tokenizer.json, tokenizer_config.json, special_tokens_map.json
                           copied from <repo>/tests/data/t5-tiny (the real T5 SentencePiece tokenizer)

Weights are random, scaled like tests/data/t5-tiny/make_fixture.py (init_weights) so activations stay
sane: embeddings and relative-attention bias N(0,1); q N(0,(d_model*d_kv)^-1/2); k,v N(0,d_model^-1/2);
o N(0,(heads*d_kv)^-1/2); wi N(0,d_model^-1/2); wo N(0,d_ff^-1/2); layer norms U(0.5,1.5). Each tensor
has its own generator seeded from (seed, tensor name), so the output is deterministic.

Unless --no-check, the directory is loaded with transformers T5EncoderModel.from_pretrained +
T5TokenizerFast and a few captions are encoded; the script fails if any output is not finite.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
TOKENIZER_SRC = HERE.parent / "tests" / "data" / "t5-tiny"  # <repo>/tests/data/t5-tiny (the real T5 tokenizer)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# d_model, d_kv, num_heads, d_ff, num_layers
SHAPES = {
    "tiny": (16, 16, 4, 256, 2),
    "small": (512, 64, 8, 2048, 6),
    "base": (768, 64, 12, 3072, 12),
    "large": (1024, 64, 16, 4096, 24),
}
VOCAB = 32128
BUCKETS = 32
MAX_DISTANCE = 128


def make_config(shape: str) -> dict:
    d_model, d_kv, heads, d_ff, layers = SHAPES[shape]
    return {
        "architectures": ["T5EncoderModel"],
        "classifier_dropout": 0.0,
        "d_ff": d_ff,
        "d_kv": d_kv,
        "d_model": d_model,
        "decoder_start_token_id": 0,
        "dense_act_fn": "relu",
        "dropout_rate": 0.1,
        "eos_token_id": 1,
        "feed_forward_proj": "relu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "is_gated_act": False,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "n_positions": 512,
        "num_decoder_layers": layers,
        "num_heads": heads,
        "num_layers": layers,
        "pad_token_id": 0,
        "relative_attention_max_distance": MAX_DISTANCE,
        "relative_attention_num_buckets": BUCKETS,
        "tie_word_embeddings": True,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def gen(seed: int, name: str) -> torch.Generator:
    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)
    return torch.Generator().manual_seed(h)


def make_weights(shape: str, seed: int) -> dict[str, torch.Tensor]:
    d_model, d_kv, heads, d_ff, layers = SHAPES[shape]
    inner = heads * d_kv
    out: dict[str, torch.Tensor] = {}

    def normal(name: str, shp: tuple[int, ...], std: float) -> None:
        out[name] = (torch.randn(shp, generator=gen(seed, name), dtype=torch.float32) * std).contiguous()

    def norm(name: str) -> None:
        out[name] = (0.5 + torch.rand((d_model,), generator=gen(seed, name), dtype=torch.float32)).contiguous()

    normal("shared.weight", (VOCAB, d_model), 1.0)
    for i in range(layers):
        p = f"encoder.block.{i}.layer.0."
        normal(p + "SelfAttention.q.weight", (inner, d_model), (d_model * d_kv) ** -0.5)
        normal(p + "SelfAttention.k.weight", (inner, d_model), d_model ** -0.5)
        normal(p + "SelfAttention.v.weight", (inner, d_model), d_model ** -0.5)
        normal(p + "SelfAttention.o.weight", (d_model, inner), inner ** -0.5)
        if i == 0:
            normal(p + "SelfAttention.relative_attention_bias.weight", (BUCKETS, heads), 1.0)
        norm(p + "layer_norm.weight")
        p = f"encoder.block.{i}.layer.1."
        normal(p + "DenseReluDense.wi.weight", (d_ff, d_model), d_model ** -0.5)
        normal(p + "DenseReluDense.wo.weight", (d_model, d_ff), d_ff ** -0.5)
        norm(p + "layer_norm.weight")
    norm("encoder.final_layer_norm.weight")
    return out


def check(out_dir: Path) -> None:
    import numpy as np
    from transformers import T5EncoderModel, T5TokenizerFast

    tok = T5TokenizerFast.from_pretrained(str(out_dir), model_max_length=512)
    model = T5EncoderModel.from_pretrained(str(out_dir), dtype=torch.float32).eval()
    caps = ["A red car drives down a wet city street at night.", "Snow.",
            " ".join(["The camera slowly pans across a busy street with people walking."] * 60)]
    enc = tok(caps, return_tensors="pt", truncation=True, padding="max_length", max_length=512)
    with torch.inference_mode():
        hid = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    lengths = enc.attention_mask.sum(dim=1).tolist()
    for b, n in enumerate(lengths):
        row = hid[b, :n].float().numpy()
        row16 = row.astype(np.float16)
        if not (np.isfinite(row).all() and np.isfinite(row16).all()):
            raise SystemExit(f"check: non-finite output for caption {b}")
        print(f"check: caption {b}: {n} tokens, std {row.std():.4g}, max |x| {np.abs(row).max():.4g}")
    print(f"check: OK (T5EncoderModel loads {out_dir}; outputs finite in fp32 and fp16)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER_SRC / f, out / f)
    (out / "config.json").write_text(json.dumps(make_config(a.shape), indent=2, sort_keys=True) + "\n")
    weights = make_weights(a.shape, a.seed)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    n = sum(t.numel() for t in weights.values())
    print(f"wrote {out}: shape {a.shape} {SHAPES[a.shape]}, {len(weights)} tensors, {n:,} params")
    if not a.no_check:
        check(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
