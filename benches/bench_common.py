"""Shared helpers for the Python benchmark scripts in benches/ (not a benchmark itself).

Paths are relative to the repository (the parent of this folder), so the scripts run from anywhere.
"""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tests" / "tools"
TINY_MODEL = REPO / "tests" / "data" / "t5-tiny"
DEFAULT_SMALL_MODEL = REPO / "target" / "bench-models" / "t5-small"
DEFAULT_DATA = REPO / "target" / "bench-data"
DEFAULT_OUT = REPO / "target" / "bench-results"
DEFAULT_SHARDFLOW = REPO / "target" / "release" / "shardflow"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cores() -> int:
    """All cores: os.cpu_count(), used for torch.set_num_threads and shardflow --threads/--workers alike."""
    return os.cpu_count() or 1


def affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "affinity": affinity(), "cpu": cpu, "mem_gib": mem_gib,
            "python": platform.python_version(), "host": platform.node()}


def shardflow_bin(path: str | None) -> Path:
    p = Path(path) if path else DEFAULT_SHARDFLOW
    if not p.exists():
        raise SystemExit(f"no shardflow binary at {p}: build it with `cargo build --release` (or pass --shardflow)")
    return p


def ensure_model(path: str | None, shape: str = "small") -> Path:
    """The model directory given, or a random-weight T5 of `shape` made once under target/bench-models/."""
    if path:
        p = Path(path)
        if not (p / "config.json").exists():
            raise SystemExit(f"{p}: not a T5 model directory (no config.json)")
        return p
    p = REPO / "target" / "bench-models" / f"t5-{shape}"
    if not (p / "model.safetensors").exists():
        log(f"making a random-weight t5-{shape} at {p} (benches/make_random_t5.py)")
        subprocess.run([sys.executable, str(REPO / "benches" / "make_random_t5.py"), str(p), "--shape", shape,
                        "--no-check"], check=True)
    return p


def ensure_dataset(count: int, seed: int, data_dir: Path, shardflow: Path) -> Path:
    """A synthetic split-pipeline dataset of `count` clips from `shardflow bench`'s generator (the one
    `shardflow bench` measures with), cached under data_dir: 2 caption windows per clip of 30..250 words,
    clips of ~0.15 MB of seeded random bytes, absolute clip locations (the reference reads them as is)."""
    d = (data_dir / f"synthetic-n{count}-s{seed}").resolve()
    done = d / ".complete"
    if done.exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    log(f"generating {count} clips (seed {seed}) into {d}")
    t0 = time.perf_counter()
    subprocess.run([str(shardflow), "bench", "--generate-only", "--keep-input", str(d),
                    "--clip-location-root", str(d), "--clips", str(count), "--seed", str(seed),
                    "--windows-per-clip", "2", "--caption-words", "30..250", "--clip-mb", "0.15"],
                   check=True, stdout=subprocess.DEVNULL)
    done.write_text("ok\n")
    log(f"generated in {time.perf_counter() - t0:.1f} s")
    return d


# ----------------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------------


def _words() -> tuple[str, ...]:
    sys.path.insert(0, str(TOOLS))
    try:
        import make_dataset  # the same vocabulary as the generated datasets
        return tuple(make_dataset.WORDS)
    finally:
        sys.path.pop(0)


def caption_of_words(rng: random.Random, words: tuple[str, ...], nwords: int) -> str:
    out = ["The", "video", "shows"]
    while len(out) < nwords:
        n = min(rng.randint(8, 25), nwords - len(out))
        sent = [rng.choice(words) for _ in range(n)]
        sent[0] = sent[0].capitalize()
        sent[-1] += "."
        out += sent
    return " ".join(out[:max(nwords, 1)])


def realistic_captions(n: int, seed: int = 0, long_fraction: float = 0.05) -> list[str]:
    """n captions: 20-300 words (about 25-360 T5 tokens), and about `long_fraction` of 450-1500 words
    (over 512 tokens, so truncated). A few carry leading/trailing whitespace (the pipeline strips it)."""
    rng = random.Random(seed)
    words = _words()
    caps = []
    for _ in range(n):
        if rng.random() < long_fraction:
            c = caption_of_words(rng, words, rng.randint(450, 1500))
        else:
            c = caption_of_words(rng, words, rng.randint(20, 300))
        if rng.random() < 0.05:
            c = "  " + c + " \n"
        caps.append(c)
    return caps


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------


def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(x) -> str:
        if isinstance(x, float):
            if x == 0 or 0.01 <= abs(x) < 1e6:
                return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"
            return f"{x:.3g}"
        return str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_results(out_dir: Path, name: str, result: dict, markdown: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(markdown + "\n")
    print(markdown)
    log(f"wrote {out_dir / (name + '.json')} and {name}.md")


def run_timed(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
              capture: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    log("$ " + " ".join(str(c) for c in cmd))
    t0 = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        tail = "\n".join(((p.stdout or "") + (p.stderr or "")).splitlines()[-30:])
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(str(c) for c in cmd)}\n{tail}")
    return p, dt


# ----------------------------------------------------------------------------------------------
# reading shard outputs
# ----------------------------------------------------------------------------------------------


def version_dir(out: Path, version: str = "v0") -> Path:
    return out / version


def dataset_stats(vdir: Path) -> dict:
    """Counts from a written dataset: samples (clips), mp4 bytes, tars (per kind)."""
    import tarfile

    clips = mp4_bytes = tars = 0
    for t in sorted(vdir.rglob("video/part_*/*.tar")):
        tars += 1
        with tarfile.open(t) as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.endswith(".mp4"):
                    clips += 1
                    mp4_bytes += m.size
    return {"clips": clips, "mp4_bytes": mp4_bytes, "tars": tars}


def count_windows(input_dir: Path, version: str = "v0", algo: str = "qwen") -> tuple[int, int]:
    """(clips with valid == true, captioned windows of those clips) from the input metadata."""
    clips = windows = 0
    key = f"{algo}_caption"
    for p in (input_dir / "metas" / version).rglob("*"):
        if not p.is_file():
            continue
        try:
            m = json.loads(p.read_bytes())
        except ValueError:
            continue
        if isinstance(m, dict) and m.get("valid") is True:
            clips += 1
            windows += sum(1 for w in m.get("windows", []) if isinstance(w, dict) and key in w)
    return clips, windows


def f16_agreement(expected_vdir: Path, actual_vdir: Path) -> dict:
    """Bit-level comparison of every t5_xxl pickle array of two datasets with the same layout; also counts
    values outside the t5-tiny fixture's fp16 tolerance |Δ| <= 2 ulp(x) + 1e-4."""
    import pickle
    import tarfile

    import numpy as np

    total = equal = far = arrays = shape_mismatch = out_tol = 0
    max_abs = 0.0
    for ta in sorted(expected_vdir.rglob("t5_xxl/part_*/*.tar")):
        tb = actual_vdir / ta.relative_to(expected_vdir)
        if not tb.exists():
            shape_mismatch += 1
            continue
        with tarfile.open(ta) as fa, tarfile.open(tb) as fb:
            mb = {m.name: m for m in fb.getmembers()}
            for m in fa.getmembers():
                if m.name not in mb:
                    shape_mismatch += 1
                    continue
                la = pickle.loads(fa.extractfile(m).read())
                lb = pickle.loads(fb.extractfile(mb[m.name]).read())
                if len(la) != len(lb):
                    shape_mismatch += 1
                    continue
                for x, y in zip(la, lb):
                    arrays += 1
                    if x.shape != y.shape:
                        shape_mismatch += 1
                        continue
                    xi = x.view(np.int16).astype(np.int32)
                    yi = y.view(np.int16).astype(np.int32)
                    total += x.size
                    equal += int((xi == yi).sum())
                    xm, ym = xi & 0x7FFF, yi & 0x7FFF
                    dist = np.where((xi < 0) == (yi < 0), np.abs(xm - ym), xm + ym)
                    far += int((dist > 1).sum())
                    d = np.abs(x.astype(np.float32) - y.astype(np.float32))
                    out_tol += int((d > 2 * np.spacing(np.abs(x)).astype(np.float32) + 1e-4).sum())
                    if x.size:
                        max_abs = max(max_abs, float(np.abs(x.astype(np.float32) - y.astype(np.float32)).max()))
    return {"arrays": arrays, "f16_values": total, "f16_equal": equal,
            "f16_equal_fraction": equal / total if total else 1.0, "f16_more_than_1ulp": far,
            "f16_out_of_tolerance": out_tol, "max_abs_diff_f16": max_abs,
            "shape_or_member_mismatches": shape_mismatch}
