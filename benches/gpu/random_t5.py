#!/usr/bin/env python3
"""Random-weight T5 encoder in Hugging Face format, made on the GPU when there is one.

    random_t5.py OUT_DIR --shape small|base|large|3b|11b|umt5-small|umt5-xxl [--seed 0] [--dtype fp32|bf16]

Original-T5 layout (ReLU, tied `shared.weight`, 32 buckets, max distance 128), weights scaled
as in tests/data/t5-tiny/make_fixture.py so activations stay sane. The 11b shape is
google-t5/t5-11b's encoder (d_model 1024, 128 heads of 128, d_ff 65536, 24 layers). The umt5
shapes are `UMT5EncoderModel`s (`"model_type": "umt5"`: gated-GELU `wi_0`/`wi_1`, a relative
position bias table in every layer, a 256,384-row embedding); umt5-xxl is google/umt5-xxl's
encoder (d_model 4096, 64 heads of 64, d_ff 10240, 24 layers), cosmos-predict2.5's and Wan's
text encoder. The tokenizer is the real T5 one from tests/data/t5-tiny (its ids are below
either vocabulary's size; only the embedding table's size follows the model)."""
import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
# d_model, d_kv, heads, d_ff, layers
SHAPES = {"small": (512, 64, 8, 2048, 6), "base": (768, 64, 12, 3072, 12), "large": (1024, 64, 16, 4096, 24),
          "3b": (1024, 128, 32, 16384, 24), "11b": (1024, 128, 128, 65536, 24),
          "umt5-small": (512, 64, 6, 1024, 8), "umt5-xxl": (4096, 64, 64, 10240, 24)}
UMT5_VOCAB = 256384


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", default="large", choices=sorted(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    a = ap.parse_args()
    d, kv, h, ff, n = SHAPES[a.shape]
    inner = h * kv
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator(device=dev).manual_seed(a.seed)
    dt = torch.float32 if a.dtype == "fp32" else torch.bfloat16

    def rnd(shape, std):
        return (torch.randn(shape, generator=g, device=dev) * std).to(dt).cpu()

    def norm():
        return (torch.rand((d,), generator=g, device=dev) + 0.5).to(dt).cpu()

    umt5 = a.shape.startswith("umt5")
    vocab = UMT5_VOCAB if umt5 else 32128
    t = {"shared.weight": rnd((vocab, d), 1.0)}
    for i in range(n):
        p = f"encoder.block.{i}.layer."
        t[p + "0.SelfAttention.q.weight"] = rnd((inner, d), (d * kv) ** -0.5)
        t[p + "0.SelfAttention.k.weight"] = rnd((inner, d), d ** -0.5)
        t[p + "0.SelfAttention.v.weight"] = rnd((inner, d), d ** -0.5)
        t[p + "0.SelfAttention.o.weight"] = rnd((d, inner), inner ** -0.5)
        if i == 0 or umt5:
            t[p + "0.SelfAttention.relative_attention_bias.weight"] = rnd((32, h), 1.0)
        t[p + "0.layer_norm.weight"] = norm()
        if umt5:
            t[p + "1.DenseReluDense.wi_0.weight"] = rnd((ff, d), d ** -0.5)
            t[p + "1.DenseReluDense.wi_1.weight"] = rnd((ff, d), d ** -0.5)
        else:
            t[p + "1.DenseReluDense.wi.weight"] = rnd((ff, d), d ** -0.5)
        t[p + "1.DenseReluDense.wo.weight"] = rnd((d, ff), ff ** -0.5)
        t[p + "1.layer_norm.weight"] = norm()
    t["encoder.final_layer_norm.weight"] = norm()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg = {"architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": d, "d_kv": kv, "num_heads": h,
           "d_ff": ff, "num_layers": n, "num_decoder_layers": n, "relative_attention_num_buckets": 32,
           "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "relu",
           "dense_act_fn": "relu", "is_gated_act": False, "vocab_size": vocab, "pad_token_id": 0, "eos_token_id": 1,
           "decoder_start_token_id": 0, "tie_word_embeddings": True, "is_encoder_decoder": True, "dropout_rate": 0.0}
    if umt5:
        cfg.update({"architectures": ["UMT5EncoderModel"], "model_type": "umt5", "feed_forward_proj": "gated-gelu",
                    "dense_act_fn": "gelu_new", "is_gated_act": True, "tie_word_embeddings": False})
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(REPO / "tests/data/t5-tiny" / f, out / f)
    print(f"wrote {out}: {sum(x.numel() for x in t.values()) / 1e9:.2f}B parameters")


if __name__ == "__main__":
    main()
