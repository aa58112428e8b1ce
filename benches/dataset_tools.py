#!/usr/bin/env python3
"""Throughput of the dataset tools: `shardflow index` and `shardflow verify` on a sharded
generated dataset (release build, tiny model for the shard step, which is not timed).

    dataset_tools.py [--count 50000] [--threads N] [--shardflow BIN] [--out-dir DIR]

Shards `shardflow bench --generate-only` (`bench_common.ensure_dataset`, N clips, seed 2) (cached in
target/bench-data) once into target/bench-work/tools/out, then times `index` (DALI + wids) and
`verify` (every check; then `--t5-model` with 16 re-embedded windows) and reports MB/s and
seconds per GB of tars. Writes <out-dir>/dataset_tools.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--threads", type=int, help="--threads of the tools (default: cores)")
    ap.add_argument("--shardflow", help="shardflow binary (default target/release/shardflow)")
    ap.add_argument("--data-dir", default=str(bc.DEFAULT_DATA))
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    a = ap.parse_args()
    sf = bc.shardflow_bin(a.shardflow)
    src = bc.ensure_dataset(a.count, 2, Path(a.data_dir), sf)
    work = bc.REPO / "target" / "bench-work" / "tools"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tiny = bc.REPO / "tests" / "data" / "t5-tiny"
    env = dict(os.environ, SHARDFLOW_LOG="warn")
    bc.run_timed([sf, "shard", "--input-clip-path", src, "--output-dataset-path", "out", "--t5-model", tiny,
                  "--max-rejected-fraction", "1"], cwd=work, env=env)
    v0 = work / "out" / "v0"
    threads = str(a.threads or bc.cores())
    tars = sum(p.stat().st_size for p in v0.rglob("*.tar"))

    def drop_caches() -> bool:
        """Cold page cache before each timed run, where permitted (root)."""
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            return True
        except OSError:
            return False

    cold = drop_caches()
    _, t_index = bc.run_timed([sf, "index", v0, "--threads", threads], env=env)
    drop_caches()
    _, t_verify = bc.run_timed([sf, "verify", v0, "--threads", threads], env=env)
    drop_caches()
    _, t_reembed = bc.run_timed([sf, "verify", v0, "--threads", threads, "--t5-model", tiny, "--sample", "16"], env=env)
    gb = tars / 1e9
    result = {
        "machine": bc.machine(),
        "clips": a.count,
        "tar_bytes": tars,
        "threads": int(threads),
        "cold_page_cache": cold,
        "index_seconds": round(t_index, 2),
        "verify_seconds": round(t_verify, 2),
        "verify_reembed_seconds": round(t_reembed, 2),
        "index_mb_per_s": round(tars / 1e6 / t_index, 1),
        "verify_mb_per_s": round(tars / 1e6 / t_verify, 1),
        "index_s_per_gb": round(t_index / gb, 2),
        "verify_s_per_gb": round(t_verify / gb, 2),
    }
    md = bc.md_table(
        ["command", "wall s", "MB/s", "s per GB"],
        [
            ["`shardflow index` (DALI + wids)", result["index_seconds"], result["index_mb_per_s"],
             result["index_s_per_gb"]],
            ["`shardflow verify`", result["verify_seconds"], result["verify_mb_per_s"], result["verify_s_per_gb"]],
            ["`shardflow verify --t5-model tiny --sample 16`", result["verify_reembed_seconds"],
             round(tars / 1e6 / t_reembed, 1), round(t_reembed / gb, 2)],
        ],
    )
    cache = "cold page cache" if cold else "warm page cache (dropping it needs root)"
    md = f"{a.count} clips, {tars / 1e9:.2f} GB of tars, {threads} threads, {cache}\n\n{md}"
    bc.write_results(Path(a.out_dir), "dataset_tools", result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
