#!/usr/bin/env python3
"""Tables for benches/gpu/RESULTS.md from run_device.sh's rows and cubecl's kernel log.

    summarize.py tag --impl NAME --model DIR --captions FILE --dtype D [--cold] < JSON line >> rows.jsonl
    summarize.py table rows.jsonl --gpu "NVIDIA H100 80GB HBM3"
    summarize.py profile cubecl.log [--top 25]

`tag` adds the implementation's name and the model directory to a line printed by
`shardflow encode` or hf_encode.py. `table` prints one Markdown row per line with tokens/s and
MFU: the useful FLOPs (matrix products only, real tokens only, no padding) over the card's
dense peak for the precision the matrix products ran in. Hugging Face's fp32 runs true fp32
(PyTorch leaves TF32 off for matmuls by default); shardflow's fp32 runs on tensor cores as TF32
(cubecl), so each is held against its own peak, named in the row. `profile` sums cubecl's
per-kernel durations (`| 12.3µs | name` lines, profiling level medium) by kernel name."""
import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

# dense (no sparsity) peaks in TFLOP/s of the SXM cards
PEAKS = {"H100": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
         "H200": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}}


def flops_per_sequence(cfg: dict, n: int) -> float:
    """Matrix-product FLOPs of one n-token sequence through the encoder."""
    d, inner, ff, layers = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"], cfg["num_layers"]
    gated = 2 if str(cfg.get("feed_forward_proj", "relu")).startswith("gated") else 1
    per_token = 2 * (3 * d * inner + inner * d + gated * d * ff + ff * d)
    attention = 2 * 2 * n * n * inner  # q·kᵀ and w·v
    return layers * (n * per_token + attention)


def lengths(model: str, captions: str) -> list:
    from transformers import T5TokenizerFast
    tok = T5TokenizerFast.from_pretrained(model, model_max_length=512)
    caps = [c.strip() for c in json.load(open(captions))]
    return [len(x) for x in tok(caps, truncation=True, max_length=512)["input_ids"]]


def table(a) -> None:
    rows = [json.loads(line) for line in open(a.rows) if line.strip()]
    gpu = next((k for k in PEAKS if k in a.gpu), None)
    cache = {}
    print("| model | implementation | precision of the matmuls | captions | tokens | seconds | tokens/s | TFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = (r["model"], r["captions_file"])
        if key not in cache:
            cfg = json.load(open(Path(r["model"]) / "config.json"))
            lens = lengths(r["model"], r["captions_file"])
            cache[key] = sum(flops_per_sequence(cfg, n) for n in lens) / sum(lens)
        flops = cache[key] * r["tokens_per_s"]
        dtype = r.get("dtype", "fp32")
        ours = r["impl"].startswith("ours")
        precision = "tf32" if ours and dtype == "fp32" else dtype
        mfu = f"{100 * flops / (PEAKS[gpu][precision] * 1e12):.1f}% of {PEAKS[gpu][precision]:g}" if gpu else "-"
        print(f"| {Path(r['model']).name} | {r['impl']}{' (' + r['note'] + ')' if r.get('note') else ''} | {precision} "
              f"| {r['captions']} | {r['tokens']} | {r['encode_seconds']:.2f} | {r['tokens_per_s']:,.0f} "
              f"| {flops / 1e12:.1f} | {mfu} |")


UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def profile(a) -> None:
    total = defaultdict(float)
    count = defaultdict(int)
    pat = re.compile(r"^\|\s*([0-9.]+)(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$")
    for line in open(a.log, encoding="utf-8", errors="replace"):
        m = pat.match(line)
        if not m:
            continue
        # names carry ids and sizes: kernels differing only in numbers are one row
        name = re.sub(r"\d+", "#", m.group(3))[:120]
        total[name] += float(m.group(1)) * UNITS[m.group(2)]
        count[name] += 1
    if not total:
        print("no kernel timings in the log (profiling runs on the CUDA backend only)")
        return
    whole = sum(total.values())
    print("| kernel | launches | total ms | share |")
    print("|---|---|---|---|")
    for name, secs in sorted(total.items(), key=lambda kv: -kv[1])[:a.top]:
        print(f"| `{name}` | {count[name]} | {secs * 1e3:.1f} | {100 * secs / whole:.1f}% |")
    print(f"| all kernels | {sum(count.values())} | {whole * 1e3:.1f} | 100% |")


def tag(a) -> None:
    line = sys.stdin.read().strip().splitlines()
    if not line:
        sys.exit("tag: no JSON line on stdin (the run failed?)")
    r = json.loads(line[-1])
    r.update({"impl": a.impl, "model": a.model, "captions_file": a.captions, "dtype": a.dtype})
    if a.note:
        r["note"] = a.note
    first = r.pop("first_run_encode_seconds", None)
    if a.cold and first:
        # the first run of a process with an empty cache: kernel compilation and autotuning
        cold = dict(r, impl=a.impl + ", first run, empty cache", encode_seconds=first,
                    tokens_per_s=r["tokens"] / first, captions_per_s=r["captions"] / first)
        print(json.dumps(cold))
    print(json.dumps(r))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tag")
    t.add_argument("--impl", required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--captions", required=True)
    t.add_argument("--dtype", required=True)
    t.add_argument("--note", default="")
    t.add_argument("--cold", action="store_true", help="also a row for the first run (empty cache)")
    t.set_defaults(func=tag)
    t = sub.add_parser("table")
    t.add_argument("rows")
    t.add_argument("--gpu", default="")
    t.set_defaults(func=table)
    t = sub.add_parser("profile")
    t.add_argument("log")
    t.add_argument("--top", type=int, default=25)
    t.set_defaults(func=profile)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
