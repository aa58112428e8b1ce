#!/usr/bin/env python3
"""Plain-Python oracle of the cosmos-curate v1.0.0 "shard" job (SPEC.md sections 2-7).

    reference_shard.py --input-clip-path P --output-dataset-path Q --annotation-version v0 --t5-model DIR
                       [--target-tar-size-mb 500] [--max-tars-per-part 100] [--captioning-algorithm qwen]
                       [--remap-clip-location FROM=TO ...]

    reference_shard.py --embed-captions CAPTIONS.json --t5-model DIR --out EMB.safetensors [--float32]
        (self-check helper: writes caption_{i:03d}.f32 / .f16 for every caption, like the t5-tiny fixture)

    Either mode takes --backend numpy|hf (default numpy):
      numpy  the T5 encoder forward pass in numpy (no torch / transformers needed), one caption at a time;
      hf     embeds exactly as the reference's T5 stage does (cosmos_curate/models/t5_encoder.py):
             T5TokenizerFast.from_pretrained(DIR, model_max_length=512), captions .strip()-ed, batches of
             --hf-batch-size (8, the reference's default) tokenised with truncation, padding="max_length",
             max_length=512 (and offset mappings, as the reference asks for them), T5EncoderModel in fp32,
             eval(), torch.inference_mode(), rows [0, attention_mask.sum()) kept, then astype(float16).
             Captions are batched across clips in listing order, as the reference's stage does for the
             clips of a task. Needs torch + transformers (imported only for this backend);
             --torch-threads sets torch.set_num_threads (default: os.cpu_count()). Timings of the stages
             go to stderr.

Written to be obviously faithful rather than fast or robust: whole tars in memory, one clip at a time with
the numpy encoder. Local paths only.

What it does, in order:
  * lists every file under P/metas/<version>/ recursively, sorted by the relative path as one string;
  * json.loads each; a file that cannot be read, is not a JSON object or lacks a key the job needs is skipped
    (logged on stderr);
  * keeps clips with valid == true, computes the v1.0.0 "frames" bin, drops clips without a bin;
  * per clip: reads the mp4 from clip_location (after an optional prefix remap used only to find the
    file; the written json keeps the original string), embeds every window's <algo>_caption
    (strip, tokenizer.json, </s> appended, truncated to 512 ids incl. </s>, T5 encoder, float16); a window
    without the caption marks the clip valid = false and contributes no array;
  * per bin, greedy tars on metadata num_bytes against target MiB * 1024 * 1024, parts of max_tars_per_part,
    tar triple video/t5_xxl/metas with members <uuid>.mp4 / .pickle / .json (regular files, mode 0o444,
    PAX headers, user/group "bigdata"), .json = json.dumps(meta), .pickle = pickle.dumps(list of float16
    arrays, protocol 4) as numpy < 2 writes it (numpy.core.multiarray._reconstruct);
  * <bin>/wdinfo.json (json.dumps(indent=4)) and <version>/wdinfo_list.csv (csv.writer, bins in order of first
    appearance).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import pickle
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------------------------
# T5 encoder in numpy
# ----------------------------------------------------------------------------------------------


def load_t5_weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    single = model_dir / "model.safetensors"
    index = model_dir / "model.safetensors.index.json"
    weights: dict[str, np.ndarray] = {}
    if single.exists():
        weights.update(load_file(str(single)))
    elif index.exists():
        wmap = json.loads(index.read_text())["weight_map"]
        for fname in sorted(set(wmap.values())):
            part = load_file(str(model_dir / fname))
            for k, v in part.items():
                if wmap.get(k) == fname:
                    weights[k] = v
    else:
        raise SystemExit(f"no model.safetensors or model.safetensors.index.json in {model_dir}")
    return weights


def relative_position_bucket(relative_position: np.ndarray, num_buckets: int, max_distance: int) -> np.ndarray:
    """HF T5Attention._relative_position_bucket, bidirectional=True, with torch's float32 arithmetic."""
    relative_buckets = np.zeros_like(relative_position, dtype=np.int64)
    num_buckets //= 2
    relative_buckets += (relative_position > 0).astype(np.int64) * num_buckets
    relative_position = np.abs(relative_position)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    with np.errstate(divide="ignore"):
        rp = relative_position.astype(np.float32) / np.float32(max_exact)
        large = np.log(rp) / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact)
    large = np.where(is_small, 0, large)  # log(0) = -inf only where is_small
    large = max_exact + large.astype(np.int64)  # .to(torch.long) truncates toward zero
    large = np.minimum(large, num_buckets - 1)
    relative_buckets += np.where(is_small, relative_position, large)
    return relative_buckets


class T5Encoder:
    def __init__(self, model_dir: Path, dtype=np.float64) -> None:
        self.dir = Path(model_dir)
        self.cfg = json.loads((self.dir / "config.json").read_text())
        self.dtype = dtype
        w = load_t5_weights(self.dir)
        self.w = {k: v.astype(dtype) for k, v in w.items() if not k.startswith("decoder.")}
        if "encoder.embed_tokens.weight" in self.w:
            self.embed = self.w["encoder.embed_tokens.weight"]
        else:
            self.embed = self.w["shared.weight"]
        c = self.cfg
        self.n_layers = c["num_layers"]
        self.n_heads = c["num_heads"]
        self.d_kv = c["d_kv"]
        self.eps = c.get("layer_norm_epsilon", 1e-6)
        self.num_buckets = c.get("relative_attention_num_buckets", 32)
        self.max_distance = c.get("relative_attention_max_distance", 128)
        ff = c.get("feed_forward_proj", "relu")
        self.gated = ff.startswith("gated-") or bool(c.get("is_gated_act", False))
        self.act = c.get("dense_act_fn", ff.split("-")[-1])
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(self.dir / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=512)

    def tokenize(self, caption: str) -> list[int]:
        return list(self.tok.encode(caption.strip(), add_special_tokens=True).ids)

    def rms_norm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        var = np.mean(np.square(x.astype(np.float32) if self.dtype == np.float32 else x), axis=-1, keepdims=True)
        return weight * (x * (self.dtype(1.0) / np.sqrt(var + self.dtype(self.eps))))

    def activation(self, x: np.ndarray) -> np.ndarray:
        if self.act == "relu":
            return np.maximum(x, 0)
        if self.act in ("gelu_new", "gelu_pytorch_tanh"):
            c = self.dtype(math.sqrt(2.0 / math.pi))
            return self.dtype(0.5) * x * (self.dtype(1.0) + np.tanh(c * (x + self.dtype(0.044715) * x ** 3)))
        raise SystemExit(f"unsupported dense_act_fn {self.act}")

    def encode_ids(self, ids: list[int]) -> np.ndarray:
        w = self.w
        L = len(ids)
        x = self.embed[np.asarray(ids, dtype=np.int64)]
        ctx = np.arange(L)[:, None]
        mem = np.arange(L)[None, :]
        buckets = relative_position_bucket(mem - ctx, self.num_buckets, self.max_distance)
        rab = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]  # [buckets, heads]
        bias = np.transpose(rab[buckets], (2, 0, 1))  # [heads, L, L]
        H, D = self.n_heads, self.d_kv
        for i in range(self.n_layers):
            p = f"encoder.block.{i}.layer.0."
            h = self.rms_norm(x, w[p + "layer_norm.weight"])
            q = (h @ w[p + "SelfAttention.q.weight"].T).reshape(L, H, D).transpose(1, 0, 2)
            k = (h @ w[p + "SelfAttention.k.weight"].T).reshape(L, H, D).transpose(1, 0, 2)
            v = (h @ w[p + "SelfAttention.v.weight"].T).reshape(L, H, D).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) + bias  # no 1/sqrt(d) scaling in T5
            scores = scores - scores.max(axis=-1, keepdims=True)
            e = np.exp(scores)
            attn = e / e.sum(axis=-1, keepdims=True)
            o = (attn @ v).transpose(1, 0, 2).reshape(L, H * D)
            x = x + o @ w[p + "SelfAttention.o.weight"].T
            p = f"encoder.block.{i}.layer.1."
            h = self.rms_norm(x, w[p + "layer_norm.weight"])
            if self.gated:
                a = self.activation(h @ w[p + "DenseReluDense.wi_0.weight"].T) * (h @ w[p + "DenseReluDense.wi_1.weight"].T)
            else:
                a = self.activation(h @ w[p + "DenseReluDense.wi.weight"].T)
            x = x + a @ w[p + "DenseReluDense.wo.weight"].T
        x = self.rms_norm(x, w["encoder.final_layer_norm.weight"])
        return x.astype(np.float32)

    def embed_caption(self, caption: str) -> np.ndarray:
        return self.encode_ids(self.tokenize(caption)).astype(np.float16)


class HFEncoder:
    """The reference's T5 stage: HF transformers T5EncoderModel, fp32, padded to max_length, batches of 8."""

    MAX_LENGTH = 512

    def __init__(self, model_dir: Path, batch_size: int = 8, threads: int | None = None) -> None:
        import torch  # lazy: the numpy backend must work without torch
        import transformers
        from transformers import T5EncoderModel, T5TokenizerFast

        transformers.logging.set_verbosity_error()
        self.torch = torch
        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.batch_size = batch_size
        self.tok = T5TokenizerFast.from_pretrained(str(model_dir), model_max_length=self.MAX_LENGTH)
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"  # torch_dtype is deprecated in 4.56+
        self.model = T5EncoderModel.from_pretrained(str(model_dir), **{dtype_kw: torch.float32}).eval()
        self.model.requires_grad_(False)
        self.encode_seconds = 0.0
        self.tokenize_seconds = 0.0

    def _batch(self, prompts: list[str]) -> list[np.ndarray]:
        torch = self.torch
        t0 = time.perf_counter()
        b = self.tok(prompts, return_tensors="pt", truncation=True, padding="max_length",
                     max_length=self.MAX_LENGTH, return_length=True, return_offsets_mapping=True)
        t1 = time.perf_counter()
        with torch.inference_mode():
            h = self.model(input_ids=b.input_ids, attention_mask=b.attention_mask).last_hidden_state
        self.encode_seconds += time.perf_counter() - t1
        self.tokenize_seconds += t1 - t0
        lengths = b.attention_mask.sum(dim=1).tolist()  # EOS included; not "first </s>" (it may be in the text)
        h = h.numpy()
        return [h[i, :n].astype(np.float32) for i, n in enumerate(lengths)]

    def encode_f32(self, captions: list[str]) -> list[np.ndarray]:
        prompts = [c.strip() for c in captions]
        out: list[np.ndarray] = []
        for i in range(0, len(prompts), self.batch_size):
            out.extend(self._batch(prompts[i:i + self.batch_size]))
        return out

    def embed_captions(self, captions: list[str]) -> list[np.ndarray]:
        return [x.astype(np.float16) for x in self.encode_f32(captions)]

    def token_ids(self, caption: str) -> list[int]:
        b = self.tok([caption.strip()], truncation=True, max_length=self.MAX_LENGTH)
        return list(b.input_ids[0])


# ----------------------------------------------------------------------------------------------
# pickle as numpy < 2 writes it
# ----------------------------------------------------------------------------------------------


class _Numpy1Pickler(pickle._Pickler):  # the pure-Python pickler, so save_global can be overridden
    def save_global(self, obj, name=None):
        from numpy._core.multiarray import _reconstruct

        if obj is _reconstruct and self.proto >= 4:
            # numpy 2 names it numpy._core.multiarray; numpy 1.x (the reference) wrote numpy.core.multiarray
            self.save("numpy.core.multiarray")
            self.save("_reconstruct")
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dumps_embeddings(arrays: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    _Numpy1Pickler(buf, protocol=4).dump(arrays)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# the shard job
# ----------------------------------------------------------------------------------------------


def frames_bin(meta: dict) -> str | None:
    w, h, n = meta["width"], meta["height"], meta["num_frames"]
    short = min(w, h)
    if short >= 1080:
        res = "1080"
    elif short >= 720:
        res = "720"
    else:
        return None
    r = w / h
    ar = None
    for lo, hi, name in ((0, 0.65, "9_16"), (0.65, 0.88, "3_4"), (0.88, 1.16, "1_1"), (1.16, 1.55, "4_3"),
                         (1.55, 10, "16_9")):
        if lo < r <= hi:
            ar = name
            break
    if ar is None:
        return None
    if 0 <= n <= 120:
        fb = "0_120"
    elif 121 <= n <= 255:
        fb = "121_255"
    elif 256 <= n <= 1023:
        fb = "256_1023"
    elif n >= 1024:
        fb = "1024_inf"
    else:
        return None
    return f"resolution_{res}/aspect_ratio_{ar}/frames_{fb}"


REQUIRED = ("span_uuid", "clip_location", "width", "height", "num_frames", "num_bytes", "windows", "valid")


def log(msg: str) -> None:
    print(f"reference_shard: {msg}", file=sys.stderr, flush=True)


def list_metas(base: Path) -> list[tuple[str, Path]]:
    out = []
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            p = Path(dirpath) / f
            out.append((str(p.relative_to(base)), p))
    out.sort(key=lambda t: t[0].encode("utf-8", "surrogateescape"))
    return out


def write_tar(path: Path, members: list[tuple[str, bytes]], mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = mtime
            ti.mode = 0o444
            ti.uname = "bigdata"
            ti.gname = "bigdata"
            ti.type = tarfile.REGTYPE
            tf.addfile(ti, io.BytesIO(data))


def run_shard(args: argparse.Namespace) -> int:
    inp = args.input_clip_path.rstrip("/")
    out_given = args.output_dataset_path
    version = args.annotation_version
    algo_key = f"{args.captioning_algorithm}_caption"
    target_bytes = args.target_tar_size_mb * 1024 * 1024
    per_part = args.max_tars_per_part
    remaps = []
    for r in args.remap_clip_location or []:
        frm, _, to = r.partition("=")
        remaps.append((frm, to))
    out_version = Path(out_given) / version
    if out_version.exists() and any(out_version.iterdir()):
        raise SystemExit(f"refusing to write into non-empty {out_version}")
    t_start = time.perf_counter()
    hf = args.backend == "hf"
    if hf:
        enc = HFEncoder(Path(args.t5_model), args.hf_batch_size, args.torch_threads)
    else:
        enc = T5Encoder(Path(args.t5_model), np.float32 if args.float32 else np.float64)
    t_loaded = time.perf_counter()

    base = Path(inp) / "metas" / version
    bins: dict[str, list[dict]] = {}  # insertion order = first appearance
    pending: list[tuple[dict, list[str]]] = []  # hf backend: clips whose captions are embedded in batches

    def flush_pending() -> None:
        captions = [c for _, caps in pending for c in caps]
        arrays = iter(enc.embed_captions(captions))
        for entry, caps in pending:
            entry["pickle"] = dumps_embeddings([next(arrays) for _ in caps])
        pending.clear()
    for rel, p in list_metas(base):
        try:
            meta = json.loads(p.read_bytes())
        except Exception as e:  # noqa: BLE001
            log(f"skipping {rel}: cannot read/parse: {e}")
            continue
        if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED):
            log(f"skipping {rel}: not a metadata object / missing keys")
            continue
        if meta["valid"] is not True:
            continue
        try:
            b = frames_bin(meta)
        except Exception as e:  # noqa: BLE001
            log(f"skipping {rel}: cannot bin: {e}")
            continue
        if b is None:
            continue
        loc = meta["clip_location"]
        for frm, to in remaps:
            if loc.startswith(frm):
                loc = to + loc[len(frm):]
                break
        try:
            mp4 = Path(loc).read_bytes()
        except Exception as e:  # noqa: BLE001
            log(f"skipping {rel}: cannot read clip {loc}: {e}")
            continue
        captions = []
        for win in meta["windows"]:
            if algo_key not in win:
                meta["valid"] = False
                continue
            captions.append(win[algo_key])
        entry = {"key": meta["span_uuid"], "num_bytes": meta["num_bytes"], "mp4": mp4,
                 "json": json.dumps(meta).encode("utf-8")}
        if hf:
            pending.append((entry, captions))
            if len(pending) >= 256:  # a "task" of clips; the batch composition does not change the result
                flush_pending()
        else:
            entry["pickle"] = dumps_embeddings([enc.embed_caption(c) for c in captions])
        bins.setdefault(b, []).append(entry)
    if hf:
        flush_pending()
    t_embedded = time.perf_counter()

    mtime = time.time()
    csv_rows = []
    for b, clips in bins.items():
        tars: list[list[dict]] = []
        cur: list[dict] = []
        cur_bytes = 0
        for c in clips:
            if cur and cur_bytes + c["num_bytes"] > target_bytes:
                tars.append(cur)
                cur, cur_bytes = [], 0
            cur.append(c)
            cur_bytes += c["num_bytes"]
        if cur:
            tars.append(cur)
        bin_dir = out_version / b
        data_list = []
        for ti, tar_clips in enumerate(tars):
            rel = f"part_{ti // per_part:06d}/{ti % per_part:06d}.tar"
            data_list.append(rel)
            for kind, ext, field in (("video", "mp4", "mp4"), ("t5_xxl", "pickle", "pickle"),
                                     ("metas", "json", "json")):
                write_tar(bin_dir / kind / rel, [(f"{c['key']}.{ext}", c[field]) for c in tar_clips], mtime)
        root = f"{out_given}/{version}/{b}"
        wdinfo = {"data_keys": ["video", "t5_xxl", "metas"], "chunk_size": per_part,
                  "data_list": sorted(data_list), "root": root, "total_key_count": len(clips)}
        (bin_dir / "wdinfo.json").write_text(json.dumps(wdinfo, indent=4))
        csv_rows.append([f"{root}/wdinfo.json"])
    out_version.mkdir(parents=True, exist_ok=True)
    with open(out_version / "wdinfo_list.csv", "w", newline="") as fp:
        csv.writer(fp).writerows(csv_rows)
    t_done = time.perf_counter()
    log(f"wrote {sum(len(c) for c in bins.values())} clips in {len(bins)} bins to {out_version}")
    timings = {"backend": args.backend, "load_seconds": t_loaded - t_start,
               "read_embed_seconds": t_embedded - t_loaded, "write_seconds": t_done - t_embedded,
               "total_seconds": t_done - t_start}
    if hf:
        timings["tokenize_seconds"] = enc.tokenize_seconds
        timings["encode_seconds"] = enc.encode_seconds
    log("timings " + json.dumps(timings))
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from safetensors.numpy import save_file

    caps = json.loads(Path(args.embed_captions).read_text())
    out = {}
    if args.backend == "hf":
        enc = HFEncoder(Path(args.t5_model), args.hf_batch_size, args.torch_threads)
        for i, (c, f32) in enumerate(zip(caps, enc.encode_f32(caps))):
            out[f"caption_{i:03d}.f32"] = f32
            out[f"caption_{i:03d}.f16"] = f32.astype(np.float16)
            out[f"caption_{i:03d}.ids"] = np.asarray(enc.token_ids(c), dtype=np.int64)
        save_file(out, args.out)
        return 0
    enc = T5Encoder(Path(args.t5_model), np.float32 if args.float32 else np.float64)
    for i, c in enumerate(caps):
        ids = enc.tokenize(c)
        f32 = enc.encode_ids(ids)
        out[f"caption_{i:03d}.f32"] = f32
        out[f"caption_{i:03d}.f16"] = f32.astype(np.float16)
        out[f"caption_{i:03d}.ids"] = np.asarray(ids, dtype=np.int64)
    save_file(out, args.out)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input-clip-path")
    ap.add_argument("--output-dataset-path")
    ap.add_argument("--annotation-version", default="v0")
    ap.add_argument("--t5-model", required=True)
    ap.add_argument("--target-tar-size-mb", type=float, default=500)
    ap.add_argument("--max-tars-per-part", type=int, default=100)
    ap.add_argument("--captioning-algorithm", default="qwen")
    ap.add_argument("--remap-clip-location", action="append", metavar="FROM=TO")
    ap.add_argument("--float32", action="store_true",
                    help="run the encoder in float32 (default: float64, cast to float32 then float16; that is the"
                         " closer match to the HF fp32 fixture tests/data/t5-tiny/expected)")
    ap.add_argument("--backend", choices=("numpy", "hf"), default="numpy",
                    help="numpy: the numpy T5 encoder (default); hf: HF transformers exactly as the reference"
                         " (needs torch + transformers)")
    ap.add_argument("--hf-batch-size", type=int, default=8, help="hf backend: captions per batch (reference: 8)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="hf backend: torch.set_num_threads (default: os.cpu_count())")
    ap.add_argument("--embed-captions", help="self-check mode: JSON list of captions")
    ap.add_argument("--out", help="self-check mode: output safetensors")
    a = ap.parse_args()
    if a.embed_captions:
        return run_embed(a)
    if not a.input_clip_path or not a.output_dataset_path:
        ap.error("--input-clip-path and --output-dataset-path are required")
    return run_shard(a)


if __name__ == "__main__":
    sys.exit(main())
