#!/usr/bin/env python3
"""Incremental re-sharding: `shardflow reshard` of a new annotation version against a full
`shardflow shard` of it, on the same generated dataset, model and machine.

    reshard_vs_shard.py [--quick] [--count N] [--changed F] [--model DIR] [--workers N]
                        [--shardflow BIN] [--data-dir DIR] [--work-dir DIR] [--out-dir DIR]

  1. Input: the first N metadata files (default 3000, --quick 300) of the generated dataset
     `shardflow bench --generate-only --clips 10000 --seed 2` (cached in --data-dir; its
     clips are real H.264, referenced by absolute path) as metas/v0, and as metas/v1 the same
     files with the first window's caption of a fraction F of the clips (default 0.10) replaced
     by a new caption.
  2. `shardflow shard` of v0 (not timed), then, timed: `shardflow reshard --from-version v0
     --annotation-version v1` into the same output, and a full `shardflow shard
     --annotation-version v1` into another. SOURCE_DATE_EPOCH pins the tar mtime of both.
  3. Every tar of the two v1 outputs must be byte-identical (SHA-256 compared).
Reports the wall seconds of both (model load included), the ratio, and the re-shard's counts
(windows embedded / reused, tars written / copied). Default model: a random-weight t5-small
(target/bench-models/t5-small; benches/make_random_t5.py). Writes
<out-dir>/reshard_vs_shard.{json,md}. Needs torch only to make the model (bench venv).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def tar_hashes(vdir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(vdir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(vdir.rglob("*.tar"))
        if "_shardflow" not in p.parts
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 clips")
    ap.add_argument("--count", type=int, help="clips (default 3000; --quick 300)")
    ap.add_argument("--changed", type=float, default=0.10, help="fraction of clips with a new caption")
    ap.add_argument("--model", help="T5 model dir (default: random t5-small under target/bench-models)")
    ap.add_argument("--workers", type=int, help="shardflow --workers (default: cores)")
    ap.add_argument("--shardflow", help="shardflow binary (default target/release/shardflow)")
    ap.add_argument("--data-dir", default=str(bc.DEFAULT_DATA))
    ap.add_argument("--work-dir", default=str(bc.REPO / "target" / "bench-work" / "reshard"))
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    a = ap.parse_args()

    n = a.count or (300 if a.quick else 3000)
    sf = bc.shardflow_bin(a.shardflow)
    model = bc.ensure_model(a.model).resolve()
    workers = a.workers or bc.cores()
    src = bc.ensure_dataset(10000, 2, Path(a.data_dir), sf)
    names = sorted(os.listdir(src / "metas" / "v0"))[:n]

    work = Path(a.work_dir)
    if work.exists():
        shutil.rmtree(work)
    inp = work / "in"
    (inp / "metas" / "v0").mkdir(parents=True)
    (inp / "metas" / "v1").mkdir(parents=True)
    rng = random.Random(7)
    new_captions = iter(bc.realistic_captions(n, seed=11))
    changed = 0
    for name in names:
        text = (src / "metas" / "v0" / name).read_text()
        (inp / "metas" / "v0" / name).write_text(text)
        meta = json.loads(text)
        windows = meta.get("windows") or []
        if windows and "qwen_caption" in windows[0] and rng.random() < a.changed:
            windows[0]["qwen_caption"] = next(new_captions)
            text = json.dumps(meta, indent=4)
            changed += 1
        (inp / "metas" / "v1" / name).write_text(text)
    bc.log(f"{n} clips, {changed} with a new caption in v1")

    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", SHARDFLOW_LOG="warn")
    common = ["--input-clip-path", inp, "--t5-model", model, "--workers", str(workers),
              "--max-rejected-fraction", "1"]
    (work / "inc").mkdir()
    (work / "full").mkdir()
    bc.run_timed([sf, "shard", *common, "--output-dataset-path", "out", "--annotation-version", "v0"],
                 cwd=work / "inc", env=env)
    _, t_reshard = bc.run_timed([sf, "reshard", *common, "--output-dataset-path", "out",
                                 "--from-version", "v0", "--annotation-version", "v1"], cwd=work / "inc", env=env)
    _, t_full = bc.run_timed([sf, "shard", *common, "--output-dataset-path", "out",
                              "--annotation-version", "v1"], cwd=work / "full", env=env)
    inc_v1, full_v1 = work / "inc" / "out" / "v1", work / "full" / "out" / "v1"
    same = tar_hashes(inc_v1) == tar_hashes(full_v1)
    rep = json.loads((inc_v1 / "_shardflow" / "report.json").read_text())
    full_rep = json.loads((full_v1 / "_shardflow" / "report.json").read_text())
    c = rep["counts"]
    result = {
        "machine": bc.machine(),
        "clips": n,
        "captions_changed": changed,
        "model": str(model),
        "workers": workers,
        "reshard_seconds": round(t_reshard, 2),
        "full_shard_seconds": round(t_full, 2),
        "speedup": round(t_full / t_reshard, 2),
        "identical_tars": same,
        "reshard_counts": {k: c[k] for k in ("written", "windows_embedded", "windows_reused", "tars",
                                              "tars_copied", "tar_files_copied")},
        "full_counts": {k: full_rep["counts"][k] for k in ("written", "windows_embedded", "tars")},
        "reshard_stage_seconds": rep["stage_seconds"],
        "full_stage_seconds": full_rep["stage_seconds"],
    }
    md = bc.md_table(
        ["run", "wall s", "windows embedded", "windows reused", "tars written", "tars copied (+ member tars)"],
        [
            ["full `shard` of v1", result["full_shard_seconds"], full_rep["counts"]["windows_embedded"], 0,
             full_rep["counts"]["tars"], 0],
            ["`reshard` v0 → v1", result["reshard_seconds"], c["windows_embedded"], c["windows_reused"], c["tars"],
             f'{c["tars_copied"]} (+{c["tar_files_copied"] - 3 * c["tars_copied"]})'],
        ],
    )
    md = (f"{n} clips, {changed} captions changed ({a.changed:.0%}), model {model.name}, {workers} workers; "
          f"speedup {result['speedup']}x; identical tars: {same}\n\n{md}")
    bc.write_results(Path(a.out_dir), "reshard_vs_shard", result, md)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
