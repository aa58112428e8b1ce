#!/usr/bin/env python3
"""Reads a dataset the way NVIDIA's cosmos-predict2.5 video trainer does, and checks every
sample against that trainer's contract (written from the contract, not from its code):

- `wdinfo_list.csv` rows -> each bin's `wdinfo.json`; the tars of data key K are at
  `os.path.join(wdinfo["root"], K, path)` for every `path` of `data_list` (the trainer joins
  them the same way; a relative root resolves against the working directory).
- data keys: `video` (`.mp4`), the embedding key (`t5_xxl` or `umt5_xxl`, `.pickle`) and
  `metas` (`.json`); the three tars hold the same keys in the same order.
- `.json`: `framerate`, `nb_frames` (== `num_frames`), `t2w_windows`: one entry per entry of
  `windows`, with `start_frame`, an exclusive `end_frame` (the window's inclusive one + 1,
  at most `nb_frames`), and `qwen2p5_7b_caption` (the window's `<algo>_caption`) when the
  window has a caption; no other key (the trainer drops a sample whose window holds one).
- the embedding member: `pickle.loads` gives a list with one dict per window, indexed by
  window number: `{"t2w_qwen2p5_7b": float16 array of shape (L >= 1, d_model)}` for a
  captioned window, `{}` (the placeholder) for one without a caption.

Then, per window index as the trainer would draw it, it takes the caption and its embedding
as the trainer does and counts the windows it could train on.

usage: read_predict25.py VERSION_DIR --d-model N [--caption-field qwen_caption]
       [--embedding-key t5_xxl]
Prints a JSON summary; exits 1 listing every problem.
"""

import argparse
import csv
import io
import json
import os
import pickle
import sys
import tarfile

import numpy as np

ALLOWED_WINDOW_KEYS = {"start_frame", "end_frame", "qwen2p5_7b_caption"}
CAPTION_KEY = "qwen2p5_7b_caption"
EMBEDDING_DICT_KEY = "t2w_qwen2p5_7b"


def members(path, ext):
    out = []
    with tarfile.open(path) as tf:
        for m in tf:
            if not m.isfile():
                continue
            key, _, e = m.name.rpartition(".")
            if e != ext:
                raise ValueError(f"{path}: member {m.name} is not .{ext}")
            out.append((key, tf.extractfile(m).read()))
    return out


def check_sample(key, meta, emb, args, problems, stats):
    where = key
    p = lambda msg: problems.append(f"{where}: {msg}")
    for k in ("framerate", "nb_frames", "t2w_windows"):
        if k not in meta:
            p(f"metas has no {k!r}")
            return
    nb = meta["nb_frames"]
    if not isinstance(nb, int) or nb != meta.get("num_frames"):
        p(f"nb_frames {nb!r} != num_frames {meta.get('num_frames')!r}")
    windows = meta.get("windows", [])
    t2w = meta["t2w_windows"]
    if not isinstance(t2w, list) or len(t2w) != len(windows):
        p(f"t2w_windows has {len(t2w)} entries for {len(windows)} windows")
        return
    if not isinstance(emb, list) or len(emb) != len(t2w):
        p(f"embedding is {type(emb).__name__} of {len(emb) if hasattr(emb, '__len__') else '?'}"
          f" items, not a list of {len(t2w)} (one per window)")
        return
    for i, (t, w, e) in enumerate(zip(t2w, windows, emb)):
        at = lambda msg: p(f"window {i}: {msg}")
        stats["windows"] += 1
        extra = set(t) - ALLOWED_WINDOW_KEYS
        if extra:
            at(f"keys {sorted(extra)} would make the trainer drop the sample")
        s, end = t.get("start_frame"), t.get("end_frame")
        if not (isinstance(s, int) and isinstance(end, int) and 0 <= s < end <= nb):
            at(f"frames [{s!r}, {end!r}) are not a range within {nb} frames")
        if s != w.get("start_frame") or end != w.get("end_frame", -2) + 1:
            at(f"t2w [{s}, {end}) is not the window's [{w.get('start_frame')}, "
               f"{w.get('end_frame')}] with an exclusive end")
        caption = w.get(args.caption_field)
        if not isinstance(e, dict):
            at(f"embedding item is {type(e).__name__}, not a dict")
            continue
        if isinstance(caption, str):
            if t.get(CAPTION_KEY) != caption:
                at(f"{CAPTION_KEY} {t.get(CAPTION_KEY)!r} != the window's {args.caption_field}")
            if set(e) != {EMBEDDING_DICT_KEY}:
                at(f"captioned window's dict has keys {sorted(e)}, not [{EMBEDDING_DICT_KEY!r}]")
                continue
            a = e[EMBEDDING_DICT_KEY]
            if not (isinstance(a, np.ndarray) and a.dtype == np.float16 and a.ndim == 2
                    and a.shape[0] >= 1 and a.shape[1] == args.d_model):
                at(f"embedding is {type(a).__name__} {getattr(a, 'dtype', '')} "
                   f"{getattr(a, 'shape', '')}, not float16 (L, {args.d_model})")
                continue
            if not np.isfinite(a.astype(np.float32)).all():
                at("embedding holds NaN or infinity")
            stats["captioned"] += 1
        else:
            if CAPTION_KEY in t:
                at(f"uncaptioned window has {CAPTION_KEY}")
            if e != {}:
                at(f"uncaptioned window's placeholder is {e!r}, not {{}}")
            stats["placeholders"] += 1
        # as the trainer takes it: the caption of the drawn window, then the embedding at the
        # same index under the caption type's key; a window without a caption is skipped
        styles = [k for k in t if k not in ("start_frame", "end_frame")]
        if styles and t.get(CAPTION_KEY):
            _ = emb[i][EMBEDDING_DICT_KEY]
            stats["trainable_windows"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("version_dir")
    ap.add_argument("--d-model", type=int, required=True)
    ap.add_argument("--caption-field", default="qwen_caption")
    ap.add_argument("--embedding-key", default="t5_xxl")
    args = ap.parse_args()
    problems = []
    stats = {"bins": 0, "tars": 0, "samples": 0, "windows": 0, "captioned": 0,
             "placeholders": 0, "trainable_windows": 0}
    with open(os.path.join(args.version_dir, "wdinfo_list.csv"), newline="") as f:
        rows = [r[0] for r in csv.reader(f) if r]
    for row in rows:
        with open(row) as f:
            info = json.load(f)
        stats["bins"] += 1
        if info["data_keys"] != ["video", args.embedding_key, "metas"]:
            # the trainer finds no tars for the key it was told to read
            problems.append(f"{row}: data_keys {info['data_keys']}")
            continue
        count = 0
        for path in info["data_list"]:
            stats["tars"] += 1
            paths = {k: os.path.join(info["root"], k, path) for k in info["data_keys"]}
            video = members(paths["video"], "mp4")
            embs = members(paths[args.embedding_key], "pickle")
            metas = members(paths["metas"], "json")
            keys = [k for k, _ in video]
            if [k for k, _ in embs] != keys or [k for k, _ in metas] != keys:
                problems.append(f"{paths['metas']}: keys differ between the streams")
                continue
            for (key, v), (_, eb), (_, mb) in zip(video, embs, metas):
                count += 1
                stats["samples"] += 1
                if not v:
                    problems.append(f"{key}: empty mp4")
                check_sample(key, json.loads(mb), pickle.loads(eb), args, problems, stats)
        if count != info["total_key_count"]:
            problems.append(f"{row}: total_key_count {info['total_key_count']}, read {count}")
    print(json.dumps(stats, sort_keys=True))
    if problems or not stats["samples"]:
        for q in problems or ["no samples"]:
            print(q, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
