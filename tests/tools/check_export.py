#!/usr/bin/env python3
"""Checks a `shardflow export --format cosmos-predict2-dir` directory against the dataset it
was exported from, reading both the way cosmos-predict2's directory loader and the shard
format define them:

- one entry per captioned window (a string under the caption field) of every clip of the
  dataset's tars, named `<span_uuid>_<window index>`, with exactly three files:
  `videos/<id>.mp4`, `t5_xxl/<id>.pickle`, `metas/<id>.txt`, and nothing else;
- `pickle.load` of the `.pickle` is a list of exactly one numpy array of shape (L, d_model),
  equal (values and dtype) to that window's embedding in the dataset's `t5_xxl` tar (a list
  of arrays, one per captioned window, or in the cosmos-predict2.5 layout one dict per window);
- the `.txt` is the caption `.strip()`-ed;
- a window covering the whole clip has the clip's mp4 bytes; any other window's mp4 is read
  by ffprobe (-count_frames) with exactly end_frame - start_frame + 1 frames, and its pixels
  are those frames of the clip: decoded (gray, 64x36), the cut matches the clip's frames
  start_frame.. better than the same frames shifted one earlier or later (`aligned`; a window
  whose neighbouring frames are too alike to tell apart counts as `static` instead).

usage: check_export.py VERSION_DIR EXPORT_DIR --d-model N [--caption-field qwen_caption]
       [--min-frames N] [--embedding-key t5_xxl]

(`--embedding-key`: the dataset's embedding stream, `umt5_xxl` for a UMT5 model's dataset in
the cosmos-predict2.5 layout; the export's folder is `t5_xxl` whatever it is, as the
directory loader reads it.)
Prints a JSON summary; exits 1 listing every problem.
"""

import argparse
import glob
import json
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np


def members(path):
    """The tar's members by key (webdataset: the name up to the first dot)."""
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile():
                key = m.name.split(".", 1)[0]
                out[key] = t.extractfile(m).read()
    return out


def frames_of(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def gray_frames(path):
    """Every frame of the video at `path`, decoded to 64x36 gray, as a float array (n, 36, 64)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-vf", "scale=64:36", "-f", "rawvideo",
         "-pix_fmt", "gray", "-"], capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=np.uint8).reshape(-1, 36, 64).astype(np.float64)


def alignment(cut, clip, start):
    """Mean squared difference of the cut's frames against the clip's from `start + o`, for
    o = -1, 0, +1 (None where the shifted range leaves the clip)."""
    out = {}
    for o in (-1, 0, 1):
        lo = start + o
        if lo < 0 or lo + len(cut) > len(clip):
            out[o] = None
            continue
        out[o] = float(np.mean((cut - clip[lo:lo + len(cut)]) ** 2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("export")
    ap.add_argument("--d-model", type=int, required=True)
    ap.add_argument("--caption-field", default="qwen_caption")
    ap.add_argument("--min-frames", type=int, default=0)
    ap.add_argument("--embedding-key", default="t5_xxl")
    a = ap.parse_args()
    problems = []
    expected = set()
    summary = {"entries": 0, "cut": 0, "whole": 0, "uncaptioned": 0, "too_short": 0,
               "aligned": 0, "static": 0}
    metas_tars = sorted(glob.glob(os.path.join(a.dataset, "**/metas/part_*/*.tar"), recursive=True))
    if not metas_tars:
        problems.append(f"no metas tars under {a.dataset}")
    for mt in metas_tars:
        metas = members(mt)
        pickles = members(mt.replace("/metas/", f"/{a.embedding_key}/"))
        videos = members(mt.replace("/metas/", "/video/"))
        for key, raw in metas.items():
            meta = json.loads(raw)
            uuid = meta.get("span_uuid", key)
            stored = pickle.loads(pickles[key])
            arrays = [x if isinstance(x, np.ndarray) else x["t2w_qwen2p5_7b"]
                      for x in stored if not isinstance(x, dict) or x]
            captioned = -1
            for i, w in enumerate(meta["windows"]):
                caption = w.get(a.caption_field)
                if not isinstance(caption, str):
                    summary["uncaptioned"] += 1
                    continue
                captioned += 1
                start, end = w["start_frame"], w["end_frame"]
                if end - start + 1 < a.min_frames:
                    summary["too_short"] += 1
                    continue
                eid = f"{uuid}_{i}"
                files = [f"videos/{eid}.mp4", f"t5_xxl/{eid}.pickle", f"metas/{eid}.txt"]
                expected.update(files)
                mp4, pkl, txt = (os.path.join(a.export, f) for f in files)
                if not all(os.path.isfile(p) for p in (mp4, pkl, txt)):
                    problems.append(f"{eid}: missing files")
                    continue
                summary["entries"] += 1
                with open(pkl, "rb") as f:
                    got = pickle.load(f)
                if not (isinstance(got, list) and len(got) == 1
                        and isinstance(got[0], np.ndarray)):
                    problems.append(f"{eid}: pickle is not a list of one array: {type(got)}")
                else:
                    arr, want = got[0], arrays[captioned]
                    if arr.ndim != 2 or arr.shape[1] != a.d_model or arr.shape[0] < 1:
                        problems.append(f"{eid}: embedding shape {arr.shape}")
                    if arr.dtype != want.dtype or not np.array_equal(arr, want):
                        problems.append(f"{eid}: embedding differs from the dataset's")
                with open(txt, encoding="utf-8") as f:
                    if f.read() != caption.strip():
                        problems.append(f"{eid}: prompt is not the stripped caption")
                whole = start == 0 and end + 1 >= meta["num_frames"]
                if whole:
                    summary["whole"] += 1
                    with open(mp4, "rb") as f:
                        if f.read() != videos[key]:
                            problems.append(f"{eid}: whole-clip video differs from the clip")
                else:
                    summary["cut"] += 1
                    n = frames_of(mp4)
                    if n != end - start + 1:
                        problems.append(f"{eid}: {n} frames, not {end - start + 1}")
                        continue
                    clip_path = os.path.join(a.export, f".check-{key}.mp4")
                    with open(clip_path, "wb") as f:
                        f.write(videos[key])
                    try:
                        clip = gray_frames(clip_path)
                    finally:
                        os.remove(clip_path)
                    err = alignment(gray_frames(mp4), clip, start)
                    known = {o: v for o, v in err.items() if v is not None}
                    best = min(known, key=known.get)
                    others = [v for o, v in known.items() if o != best]
                    # re-encoding (CRF 18) leaves a small error, a frame shifted by one a much
                    # larger one unless the clip hardly moves
                    if not others or min(others) < 4 * max(known[best], 1.0):
                        summary["static"] += 1
                    elif best == 0:
                        summary["aligned"] += 1
                    else:
                        problems.append(f"{eid}: the cut's frames are the clip's from frame "
                                        f"{start + best}, not {start} (mean squared error by "
                                        f"offset: {err})")
    found = set()
    for root, _, names in os.walk(a.export):
        for n in names:
            found.add(os.path.relpath(os.path.join(root, n), a.export))
    for extra in sorted(found - expected):
        problems.append(f"unexpected file {extra}")
    print(json.dumps(summary))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
