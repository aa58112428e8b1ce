#!/usr/bin/env python3
"""Parity of `shardflow encode` output against the HF fixture (tests/data/t5-tiny/expected).

    parity.py EMBEDDINGS.safetensors [--label cuda-fp32] [--strict]

EMBEDDINGS: written by `shardflow encode --captions tests/data/t5-tiny/captions.json --output ...`
(fp32 rows, keys caption_00000...). Prints max |Δ| of the fp32 rows against HF's fp32, and how
many fp16-rounded values equal HF's fp16 (and how many are more than 1 ulp away). With --strict
the script fails unless f32 |Δ| <= 1e-4 + 1e-4|x| everywhere and no fp16 value is more than
1 ulp away (the fixture README's tolerance for an fp32 implementation)."""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("embeddings")
    ap.add_argument("--label", default="")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    ours = load_file(a.embeddings)
    exp = load_file(str(REPO / "tests/data/t5-tiny/expected/embeddings.safetensors"))
    n = len(json.load(open(REPO / "tests/data/t5-tiny/captions.json")))
    max_abs, bad_f32, total, equal, over1 = 0.0, 0, 0, 0, 0
    for i in range(n):
        e32 = exp[f"caption_{i:03d}.f32"]
        e16 = exp[f"caption_{i:03d}.f16"]
        o32 = ours[f"caption_{i:05d}"]
        assert o32.shape == e32.shape, (i, o32.shape, e32.shape)
        d = np.abs(o32 - e32)
        max_abs = max(max_abs, float(d.max()))
        bad_f32 += int((d > 1e-4 + 1e-4 * np.abs(e32)).sum())
        o16 = o32.astype(np.float16)
        ulps = np.abs(o16.view(np.int16).astype(np.int32) - e16.view(np.int16).astype(np.int32))
        total += o16.size
        equal += int((ulps == 0).sum())
        over1 += int((ulps > 1).sum())
    result = {"label": a.label, "captions": n, "f32_max_abs_diff": max_abs, "f32_out_of_tolerance": bad_f32,
              "f16_values": total, "f16_equal": equal, "f16_more_than_1ulp": over1}
    print(json.dumps(result))
    if a.strict and (bad_f32 or over1 > 0.001 * total):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
