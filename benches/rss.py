#!/usr/bin/env python3
"""Peak resident memory of `shardflow shard` as the dataset grows (tiny T5, so the encoder is negligible).

    rss.py [--quick] [--sizes 1000,10000,50000] [--model DIR] [--workers N] [--shardflow BIN]
           [--data-dir DIR] [--work-dir DIR] [--out-dir DIR] [--keep-data]

For each size N: `shardflow bench --generate-only --clips N --seed 2` (`bench_common.ensure_dataset`) (cached in
--data-dir, default target/bench-data; about 13 KB of mp4 per clip, so 50k clips is ~0.7 GB in and the
same out), then `shardflow shard --workers <cores> --t5-model tests/data/t5-tiny` under
`/usr/bin/time -v` (peak RSS = "Maximum resident set size"; without GNU time, the child's
getrusage(RUSAGE_CHILDREN).ru_maxrss measured in a fresh wrapper process). Prints clips, wall seconds,
clips/s and peak RSS MiB per size; the output is deleted after each run. Defaults: 1000, 10000, 50000
clips; --quick: 100, 1000. Generated inputs are deleted after the run unless --keep-data (or they were
already cached). Writes <out-dir>/rss.{json,md} (default target/bench-results/).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

GNU_TIME = Path("/usr/bin/time")
WRAPPER = r"""
import resource, subprocess, sys, time, json
t0 = time.perf_counter()
rc = subprocess.call(sys.argv[1:])
wall = time.perf_counter() - t0
print(json.dumps({"rc": rc, "wall": wall, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
      file=sys.stderr)
sys.exit(rc)
"""


def gnu_time_ok() -> bool:
    if not GNU_TIME.exists():
        return False
    p = subprocess.run([str(GNU_TIME), "-v", "true"], capture_output=True, text=True)
    return p.returncode == 0 and "Maximum resident set size" in p.stderr


def measure(cmd: list[str], cwd: Path, env: dict, use_gnu_time: bool) -> tuple[float, float]:
    """(wall seconds, peak RSS KiB) of cmd."""
    cmd = [str(c) for c in cmd]
    bc.log("$ " + " ".join(cmd))
    if use_gnu_time:
        t0 = time.perf_counter()
        p = subprocess.run([str(GNU_TIME), "-v", *cmd], cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}):\n" + "\n".join((p.stdout + p.stderr).splitlines()[-30:]))
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        return wall, float(m.group(1))
    p = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    info = json.loads(p.stderr.strip().splitlines()[-1])
    if info["rc"] != 0:
        raise SystemExit(f"failed ({info['rc']}):\n" + "\n".join((p.stdout + p.stderr).splitlines()[-30:]))
    return info["wall"], float(info["maxrss_kb"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="sizes 100 and 1000")
    ap.add_argument("--sizes", help="comma-separated clip counts (default 1000,10000,50000)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--model", default=str(bc.TINY_MODEL), help="T5 model dir (default tests/data/t5-tiny)")
    ap.add_argument("--workers", type=int, help="shardflow --workers (default: cores)")
    ap.add_argument("--shardflow", help="shardflow binary (default target/release/shardflow)")
    ap.add_argument("--shardflow-arg", action="append", default=[], help="extra shardflow shard argument")
    ap.add_argument("--data-dir", default=str(bc.DEFAULT_DATA))
    ap.add_argument("--work-dir", default=str(bc.REPO / "target" / "bench-work"))
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    ap.add_argument("--keep-data", action="store_true", help="keep the generated inputs for the next run")
    a = ap.parse_args()

    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else ([100, 1000] if a.quick else [1000, 10000, 50000])
    sf = bc.shardflow_bin(a.shardflow)
    model = Path(a.model).resolve()
    workers = a.workers or bc.cores()
    use_gnu = gnu_time_ok()
    if not use_gnu:
        bc.log("no GNU time at /usr/bin/time (apt-get install -y time); using getrusage(RUSAGE_CHILDREN)")
    env = dict(os.environ, SHARDFLOW_LOG="warn")
    data_dir = Path(a.data_dir)
    rows, results = [], []
    for n in sizes:
        cached = (data_dir / f"synthetic-n{n}-s{a.seed}" / ".complete").exists()
        data = bc.ensure_dataset(n, a.seed, data_dir, sf).resolve()
        Path(a.work_dir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="rss.", dir=a.work_dir))
        try:
            wall, kib = measure([sf, "shard", "--input-clip-path", data, "--output-dataset-path", "out",
                                 "--annotation-version", "v0", "--t5-model", model, "--workers", str(workers),
                                 *a.shardflow_arg], work, env, use_gnu)
            report = json.loads((work / "out/v0/_shardflow/report.json").read_text())
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if not cached and not a.keep_data:
                shutil.rmtree(data, ignore_errors=True)
        counts = report.get("counts", {})
        written = counts.get("written")
        r = {"clips": n, "written": written, "windows": counts.get("windows_embedded"), "wall_seconds": wall,
             "report_wall_seconds": report.get("wall_seconds"), "clips_per_s": n / wall,
             "peak_rss_mib": kib / 1024, "stage_seconds": report.get("stage_seconds")}
        results.append(r)
        rows.append([n, written, r["windows"], wall, r["clips_per_s"], r["peak_rss_mib"]])
        bc.log(f"{n} clips: peak RSS {kib / 1024:.1f} MiB, {wall:.1f} s")
    md = [f"### Peak RSS of shardflow shard ({'quick' if a.quick else 'full'})", "",
          f"model `{model}`, `shardflow bench --generate-only --seed {a.seed}`, {bc.cores()} cores, "
          f"--workers {workers}; peak RSS from {'/usr/bin/time -v' if use_gnu else 'getrusage(RUSAGE_CHILDREN)'}.",
          "", bc.md_table(["clips", "written", "captions", "wall s", "clips/s", "peak RSS MiB"], rows)]
    bc.write_results(Path(a.out_dir), "rss", {"machine": bc.machine(), "quick": a.quick, "model": str(model),
                                              "workers": workers, "gnu_time": use_gnu, "sizes": results},
                     "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
