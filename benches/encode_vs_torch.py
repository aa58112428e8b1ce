#!/usr/bin/env python3
"""T5 encoder throughput: HF transformers (torch, CPU) against `shardflow encode`, same model, same captions.

    encode_vs_torch.py [--quick] [--model DIR] [--count N] [--seed S] [--shardflow BIN] [--out-dir DIR]

Methods (all fp32, CPU, all cores: torch.set_num_threads(os.cpu_count()), shardflow --threads = cores):
  (a) hf-padded   the reference: T5TokenizerFast(model_max_length=512), captions .strip()-ed, batches of 8
                  in input order, padding="max_length" (512), truncation, attention mask, T5EncoderModel,
                  torch.inference_mode(); rows [0, mask sum) kept;
  (b) hf-sorted   the same model without padding to 512: captions sorted by token count, batches of
                  --sorted-batch-size (8) padded only to the longest in the batch;
  (c) shardflow   `shardflow encode --threads <cores> --repeat 2` (best of 2 runs; the first one warms up),
                  its default batching unless --sf-batch-size / --sf-max-batch-tokens are given.
Only the encoder calls are timed (the tokenizer is timed apart); HF gets one warm-up batch first.
tokens = real tokens (attention-mask sum, </s> included), the same count for every method; (a) also
processes the padding (count x 512 positions), shown as "positions".

Agreement: max |Δ| of the fp32 rows of (b) and (c) against (a), the fraction of fp16 values
(astype(float16) of the fp32 rows, compared bit for bit) equal to (a)'s, how many are more than
1 ulp away (near zero a 1e-6 fp32 difference is many fp16 ulps, so this is informational), and how many
values break the t5-tiny fixture's parity tolerances: fp32 |Δ| <= 1e-4 + 1e-4|x|, fp16 |Δ| <= 2 ulp(x) + 1e-4.
Row counts must match (a different count means the tokenizers disagree). Exit status 1 on a row-count
mismatch or a tolerance violation.

Defaults: --model target/bench-models/t5-small (a random-weight t5-small, made with
benches/make_random_t5.py if missing); full: 1000 captions; --quick: 48 captions.
Writes <out-dir>/encode_vs_torch.{json,md} (default target/bench-results/) and prints the table.
Needs torch + transformers + safetensors + numpy (e.g. /work/bench-venv/bin/python3).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

MAX_LEN = 512


def hf_load(model_dir: Path):
    import torch
    import transformers
    from transformers import T5EncoderModel, T5TokenizerFast

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(bc.cores())  # os.cpu_count()
    tok = T5TokenizerFast.from_pretrained(str(model_dir), model_max_length=MAX_LEN)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    model = T5EncoderModel.from_pretrained(str(model_dir), **{kw: torch.float32}).eval()
    model.requires_grad_(False)
    return torch, tok, model


def hf_run(torch, tok, model, prompts: list[str], order: list[int], batch: int, padded: bool):
    """Encodes prompts[order[...]] in batches; returns ({index: fp32 rows}, tokenize_s, encode_s, positions)."""
    out: dict[int, np.ndarray] = {}
    tok_s = enc_s = 0.0
    positions = 0
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        t0 = time.perf_counter()
        if padded:
            b = tok([prompts[j] for j in idx], return_tensors="pt", truncation=True, padding="max_length",
                    max_length=MAX_LEN, return_offsets_mapping=True)
        else:
            b = tok([prompts[j] for j in idx], return_tensors="pt", truncation=True, padding="longest",
                    max_length=MAX_LEN)
        t1 = time.perf_counter()
        with torch.inference_mode():
            h = model(input_ids=b.input_ids, attention_mask=b.attention_mask).last_hidden_state
        t2 = time.perf_counter()
        tok_s += t1 - t0
        enc_s += t2 - t1
        positions += b.input_ids.numel()
        h = h.numpy()
        for r, (j, n) in enumerate(zip(idx, b.attention_mask.sum(dim=1).tolist())):
            out[j] = h[r, :n].copy()
    return out, tok_s, enc_s, positions


def agreement(ref: dict[int, np.ndarray], other, n: int) -> dict:
    """other: callable i -> fp32 rows."""
    max_abs = 0.0
    total = equal = far = out_tol = f16_out_tol = 0
    row_mismatch = []
    for i in range(n):
        a = ref[i]
        b = other(i)
        if a.shape != b.shape:
            row_mismatch.append({"caption": i, "ref_shape": list(a.shape), "shape": list(b.shape)})
            continue
        d = np.abs(a - b)
        max_abs = max(max_abs, float(d.max()) if a.size else 0.0)
        out_tol += int((d > 1e-4 + 1e-4 * np.abs(a)).sum())  # the t5-tiny fixture's fp32 parity tolerance
        ah, bh = a.astype(np.float16), b.astype(np.float16)
        a16 = ah.view(np.int16).astype(np.int32)
        b16 = bh.view(np.int16).astype(np.int32)
        total += a16.size
        equal += int((a16 == b16).sum())
        # ulp distance on the sign-magnitude encoding (same sign: |Δbits|; sign change: sum of magnitudes)
        am, bm = a16 & 0x7FFF, b16 & 0x7FFF
        same = (a16 < 0) == (b16 < 0)
        dist = np.where(same, np.abs(am - bm), am + bm)
        far += int((dist > 1).sum())
        # the t5-tiny fixture's fp16 tolerance: |Δ| <= 2 ulp(x) + 1e-4
        d16 = np.abs(ah.astype(np.float32) - bh.astype(np.float32))
        f16_out_tol += int((d16 > 2 * np.spacing(np.abs(ah)).astype(np.float32) + 1e-4).sum())
    return {"max_abs_diff_f32": max_abs, "f16_values": total, "f16_equal": equal,
            "f16_equal_fraction": equal / total if total else 1.0, "f16_more_than_1ulp": far,
            "f32_out_of_tolerance": out_tol, "f16_out_of_tolerance": f16_out_tol,
            "row_count_mismatches": row_mismatch[:20], "row_count_mismatch_count": len(row_mismatch)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="48 captions (seconds to a few minutes)")
    ap.add_argument("--model", help="T5 model dir (default: random t5-small under target/bench-models)")
    ap.add_argument("--count", type=int, help="captions (default 1000; --quick 48)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sorted-batch-size", type=int, default=8)
    ap.add_argument("--sf-batch-size", type=int)
    ap.add_argument("--sf-max-batch-tokens", type=int)
    ap.add_argument("--sf-repeat", type=int, default=2)
    ap.add_argument("--shardflow", help="shardflow binary (default target/release/shardflow)")
    ap.add_argument("--skip-padded", action="store_true", help="skip (a) (then (b) is the reference for agreement)")
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    a = ap.parse_args()

    n = a.count or (48 if a.quick else 1000)
    sf = bc.shardflow_bin(a.shardflow)
    model_dir = bc.ensure_model(a.model)
    ncores = bc.cores()
    captions = bc.realistic_captions(n, a.seed)
    prompts = [c.strip() for c in captions]

    torch, tok, model = hf_load(model_dir)
    lengths = [len(x) for x in tok(prompts, truncation=True, max_length=MAX_LEN).input_ids]
    tokens = sum(lengths)
    n_trunc = sum(1 for p in prompts if len(tok(p).input_ids) > MAX_LEN)
    bc.log(f"{n} captions, {tokens} tokens (mean {tokens / n:.0f}, {n_trunc} truncated to 512); "
           f"model {model_dir}; {ncores} cores; torch threads {torch.get_num_threads()}")

    # warm-up: one padded batch and one short one
    hf_run(torch, tok, model, prompts, list(range(min(8, n))), 8, True)
    hf_run(torch, tok, model, prompts, list(range(min(8, n))), 8, False)

    results = {}
    outputs = {}
    if not a.skip_padded:
        bc.log("(a) HF padded to 512, batches of 8")
        out_a, tk, es, pos = hf_run(torch, tok, model, prompts, list(range(n)), 8, True)
        outputs["a"] = out_a
        results["hf-padded"] = {"encode_seconds": es, "tokenize_seconds": tk, "positions": pos}
    bc.log(f"(b) HF unpadded, sorted by length, batches of {a.sorted_batch_size}")
    order = sorted(range(n), key=lambda i: lengths[i])
    out_b, tk, es, pos = hf_run(torch, tok, model, prompts, order, a.sorted_batch_size, False)
    outputs["b"] = out_b
    results["hf-sorted"] = {"encode_seconds": es, "tokenize_seconds": tk, "positions": pos}
    del model

    bc.log("(c) shardflow encode")
    with tempfile.TemporaryDirectory(prefix="encode_vs_torch.") as td:
        cap_file = Path(td) / "captions.json"
        cap_file.write_text(json.dumps(captions))
        emb = Path(td) / "emb.safetensors"
        cmd = [sf, "encode", "--t5-model", model_dir, "--captions", cap_file, "--output", emb,
               "--threads", str(ncores), "--repeat", str(a.sf_repeat)]
        if a.sf_batch_size:
            cmd += ["--batch-size", str(a.sf_batch_size)]
        if a.sf_max_batch_tokens:
            cmd += ["--max-batch-tokens", str(a.sf_max_batch_tokens)]
        env = dict(os.environ, SHARDFLOW_LOG="warn")
        p, wall = bc.run_timed(cmd, env=env)
        stats = json.loads(p.stdout.strip().splitlines()[-1])
        if stats["tokens"] != tokens:
            bc.log(f"WARNING: shardflow counted {stats['tokens']} tokens, HF {tokens}")
        results["shardflow"] = {"encode_seconds": stats["encode_seconds"],
                                "tokenize_seconds": stats["tokenize_seconds"], "positions": stats["tokens"],
                                "process_wall_seconds": wall, "stats": stats}
        from safetensors.numpy import load_file

        sf_rows = load_file(str(emb))

    ref_key = "b" if a.skip_padded else "a"
    ref = outputs[ref_key]
    agree = {}
    if not a.skip_padded:
        agree["hf-sorted vs hf-padded"] = agreement(ref, lambda i: out_b[i], n)
    agree[f"shardflow vs {'hf-sorted' if a.skip_padded else 'hf-padded'}"] = agreement(
        ref, lambda i: sf_rows[f"caption_{i:05d}"], n)

    rows = []
    base = results.get("hf-padded", results["hf-sorted"])["encode_seconds"]
    for name, r in results.items():
        r["captions_per_s"] = n / r["encode_seconds"]
        r["tokens_per_s"] = tokens / r["encode_seconds"]
        r["speedup_vs_first"] = base / r["encode_seconds"]
        rows.append([name, n, tokens, r["positions"], r["encode_seconds"], r["captions_per_s"], r["tokens_per_s"],
                     f"{r['speedup_vs_first']:.2f}x"])
    md = [f"### T5 encoder: HF transformers vs shardflow ({'quick' if a.quick else 'full'})", "",
          f"model `{model_dir}`, {n} captions, {tokens} tokens ({n_trunc} truncated at 512), "
          f"{ncores} cores ({bc.machine()['cpu'] or 'CPU model unknown'}), fp32 CPU; torch {torch.__version__}, {torch.get_num_threads()} threads.", "",
          bc.md_table(["method", "captions", "tokens", "positions", "encode s", "captions/s", "tokens/s",
                       "speedup"], rows), "",
          bc.md_table(["agreement", "max abs Δ fp32", "fp32 out of tol", "fp16 equal", "fp16 >1 ulp",
                       "fp16 out of tol", "row-count mismatches"],
                      [[k, f"{v['max_abs_diff_f32']:.3g}", v["f32_out_of_tolerance"],
                        f"{v['f16_equal_fraction'] * 100:.3f}%", v["f16_more_than_1ulp"], v["f16_out_of_tolerance"],
                        v["row_count_mismatch_count"]] for k, v in agree.items()])]
    result = {"machine": bc.machine(), "quick": a.quick, "model": str(model_dir), "captions": n, "tokens": tokens,
              "truncated": n_trunc, "seed": a.seed, "torch": torch.__version__,
              "torch_threads": torch.get_num_threads(), "methods": results, "agreement": agree}
    bc.write_results(Path(a.out_dir), "encode_vs_torch", result, "\n".join(md))
    bad = [k for k, v in agree.items() if v["row_count_mismatch_count"] or v["f32_out_of_tolerance"]
           or v["f16_out_of_tolerance"]]
    if bad:
        bc.log(f"DISAGREEMENT: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
