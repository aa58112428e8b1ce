#!/usr/bin/env python3
"""Regenerate the umt5-tiny UMT5-encoder parity fixture (random weights, the t5-tiny tokenizer).

A tiny `UMT5EncoderModel` (the class cosmos-predict2.5 and Wan load for umt5-xxl) shaped like
umt5-xxl in every way that matters to a port: gated-gelu feed-forward, untied embeddings, and a
relative position bias table in EVERY layer. The captions are t5-tiny's 26, tokenized with
t5-tiny's tokenizer.json (vocab_size 32128 covers it), and run the way the T5 fixture was:
strip(), padded to 512 with the attention mask, all in one batch, fp32, eager attention.

Usage: python make_fixture.py [--out DIR]      (default: the directory holding this script)
Requires: torch, transformers (made with 5.25.0), safetensors, numpy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as np_save_file

HERE = Path(__file__).resolve().parent
T5_TINY = HERE.parent / "t5-tiny"
SEED = 20261207
MAX_LENGTH = 512

CONFIG = dict(
    vocab_size=32128,
    d_model=16,
    d_kv=8,  # inner = num_heads * d_kv = 32 differs from d_model (16)
    num_heads=4,
    d_ff=48,
    num_layers=3,  # three bias tables: a port that shares layer 0's fails on layers 1 and 2
    num_decoder_layers=1,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    layer_norm_epsilon=1e-06,
    feed_forward_proj="gated-gelu",
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
    architectures=["UMT5EncoderModel"],
)


def stable_seed(name: str) -> int:
    return (SEED * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def init_weights(model) -> dict:
    """Each parameter from a generator seeded by its name, independent of transformers' init."""
    c = model.config
    kinds = {}
    for name, p in model.named_parameters():
        g = torch.Generator().manual_seed(stable_seed(name))
        if "layer_norm" in name:
            t = 0.5 + torch.rand(p.shape, generator=g, dtype=torch.float64)
            kind = "U(0.5,1.5)"
        else:
            if name.endswith(("shared.weight", "embed_tokens.weight")):
                std = 1.0
            elif "relative_attention_bias" in name:
                std = 1.0  # large on purpose: a bucketing or per-layer-table bug shows
            elif name.endswith(".q.weight"):
                std = (c.d_model * c.d_kv) ** -0.5
            elif name.endswith((".k.weight", ".v.weight")):
                std = c.d_model ** -0.5
            elif name.endswith(".o.weight"):
                std = (c.num_heads * c.d_kv) ** -0.5
            elif ".wi" in name:
                std = c.d_model ** -0.5
            elif name.endswith(".wo.weight"):
                std = c.d_ff ** -0.5
            else:
                raise RuntimeError(f"unexpected parameter {name}")
            t = torch.randn(p.shape, generator=g, dtype=torch.float64) * std
            kind = f"N(0,{std:.4g})"
        with torch.no_grad():
            p.copy_(t.to(p.dtype))
        kinds[name] = kind
    return kinds


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()

    import transformers
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    transformers.logging.set_verbosity_error()
    torch.manual_seed(SEED)
    out = Path(args.out).resolve()
    exp = out / "expected"
    exp.mkdir(parents=True, exist_ok=True)

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if out != T5_TINY:
            shutil.copyfile(T5_TINY / name, out / name)
    tok = AutoTokenizer.from_pretrained(out, model_max_length=MAX_LENGTH)
    captions = json.loads((T5_TINY / "captions.json").read_text())
    prompts = [c.strip() for c in captions]
    t5_tokens = json.loads((T5_TINY / "expected" / "tokens.json").read_text())

    config = UMT5Config(**CONFIG)
    model = UMT5EncoderModel(config).eval()
    init_kinds = init_weights(model)
    for f in out.glob("model*.safetensors*"):
        f.unlink()
    model.save_pretrained(out, safe_serialization=True)
    del model

    enc = UMT5EncoderModel.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    batch = tok(prompts, return_tensors="pt", truncation=True, padding="max_length", max_length=MAX_LENGTH)
    with torch.inference_mode():
        hidden = enc(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    lengths = [int(n) for n in batch["attention_mask"].sum(dim=1).tolist()]

    tensors, records, rows32 = {}, [], []
    for i, p in enumerate(prompts):
        n = lengths[i]
        ids = batch["input_ids"][i, :n].tolist()
        # the same tokenizer.json as t5-tiny: the same ids
        assert ids == t5_tokens[i]["input_ids"], f"caption {i}: ids differ from t5-tiny"
        row32 = hidden[i, :n].numpy().astype(np.float32)
        assert np.isfinite(row32).all()
        tensors[f"caption_{i:03d}.f32"] = np.ascontiguousarray(row32)
        tensors[f"caption_{i:03d}.f16"] = np.ascontiguousarray(row32.astype(np.float16))
        rows32.append(row32)
        records.append({"index": i, "length": n, "input_ids": ids})
    np_save_file(tensors, str(exp / "embeddings.safetensors"),
                 metadata={"fixture": "umt5-tiny", "layout": "caption_NNN.f32 / caption_NNN.f16: [length, d_model]"})
    (exp / "tokens.json").write_text(json.dumps(records, indent=1) + "\n")

    # cross-checks: each caption alone (no padding); float64; layer 0's table everywhere (must differ)
    with torch.inference_mode():
        solo = [enc(input_ids=batch["input_ids"][i:i + 1, :n]).last_hidden_state[0].numpy()
                for i, n in enumerate(lengths)]
        enc64 = UMT5EncoderModel.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").double().eval()
        h64 = enc64(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        for block in enc64.encoder.block[1:]:
            block.layer[0].SelfAttention.relative_attention_bias.weight.copy_(
                enc64.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight)
        shared = enc64(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    def maxdiff(a_rows, b_rows):
        return max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) for a, b in zip(a_rows, b_rows))

    allv = np.concatenate([r.ravel() for r in rows32])
    stats = {
        "fixture": "umt5-tiny",
        "seed": SEED,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
        "config": CONFIG,
        "init": init_kinds,
        "lengths": lengths,
        "output_f32": {"min": float(allv.min()), "max": float(allv.max()), "std": float(allv.std())},
        "padded_vs_unpadded_f32_max_abs_diff": maxdiff(rows32, solo),
        "f32_vs_float64_max_abs_diff": maxdiff(rows32, [h64[i, :n].numpy() for i, n in enumerate(lengths)]),
        "layer0_table_in_every_layer_max_abs_diff": maxdiff(
            [h64[i, :n].numpy() for i, n in enumerate(lengths)], [shared[i, :n].numpy() for i, n in enumerate(lengths)]),
        "files_sha256": {},
    }
    for f in sorted(out.rglob("*")):
        if "__pycache__" not in f.parts:
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
    for f in sorted(out.rglob("*")):
        if f.is_file() and f.name != "stats.json" and "__pycache__" not in f.parts:
            stats["files_sha256"][str(f.relative_to(out))] = sha256(f)
    (exp / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(json.dumps({k: stats[k] for k in ("output_f32", "padded_vs_unpadded_f32_max_abs_diff",
                                             "f32_vs_float64_max_abs_diff",
                                             "layer0_table_in_every_layer_max_abs_diff")}, indent=1))


if __name__ == "__main__":
    main()
