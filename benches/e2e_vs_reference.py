#!/usr/bin/env python3
"""End to end: the reference pipeline (HF transformers T5, batches of 8 padded to 512) against
`shardflow shard`, on the same generated dataset and model; then a strict comparison of the outputs.

    e2e_vs_reference.py [--quick] [--count N] [--seed S] [--model DIR] [--workers N] [--shardflow BIN]
                        [--data-dir DIR] [--work-dir DIR] [--out-dir DIR] [--keep] [--skip-reference]

  1. `shardflow bench --generate-only --clips N --seed S` (`bench_common.ensure_dataset`) (cached in --data-dir,
     default target/bench-data/synthetic-n<N>-s<S>). Default N: 2000, --quick: 100.
  2. `tests/tools/reference_shard.py --backend hf` (the reference's T5 stage: T5TokenizerFast,
     T5EncoderModel fp32, padding="max_length" 512, batches of 8, torch threads = cores), and
     `shardflow shard --workers <cores>` (its default batching), each in its own working directory with
     the same relative --output-dataset-path, so the wdinfo roots match.
  3. `tests/tools/compare_datasets.py REF SHARDFLOW --strict-bytes --check-headers --strict-csv-order`
     must print OK (fp16 tolerance 2e-2, its default); wdinfo.json and wdinfo_list.csv must be
     byte-identical; plus bit-level fp16 statistics of every embedding.
Reports, for both: wall seconds of the whole process (model load included), clips/s, captions/s
(embedded windows), MB/s (mp4 bytes written, 10^6) and the speedup (reference wall / shardflow wall),
plus the reference's own stage timings and shardflow's report.json stage_seconds.

Default model: target/bench-models/t5-small (random weights; made with benches/make_random_t5.py if
missing). Writes <out-dir>/e2e_vs_reference.{json,md} (default target/bench-results/). Exit status 1 if
the comparison fails. Needs torch + transformers (e.g. /work/bench-venv/bin/python3).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 clips")
    ap.add_argument("--count", type=int, help="clips (default 2000; --quick 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", help="T5 model dir (default: random t5-small under target/bench-models)")
    ap.add_argument("--workers", type=int, help="shardflow --workers (default: cores)")
    ap.add_argument("--shardflow", help="shardflow binary (default target/release/shardflow)")
    ap.add_argument("--shardflow-arg", action="append", default=[], help="extra shardflow shard argument")
    ap.add_argument("--data-dir", default=str(bc.DEFAULT_DATA))
    ap.add_argument("--work-dir", default=str(bc.REPO / "target" / "bench-work"))
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    ap.add_argument("--keep", action="store_true", help="keep both outputs (printed) instead of deleting them")
    ap.add_argument("--skip-reference", action="store_true", help="run shardflow only (no comparison)")
    a = ap.parse_args()

    n = a.count or (100 if a.quick else 2000)
    sf = bc.shardflow_bin(a.shardflow)
    model_dir = bc.ensure_model(a.model).resolve()
    ncores = bc.cores()
    workers = a.workers or ncores
    data = bc.ensure_dataset(n, a.seed, Path(a.data_dir), sf).resolve()
    valid_clips, windows = bc.count_windows(data)
    for f in data.rglob("*"):  # warm the page cache, so neither run pays for cold reads
        if f.is_file():
            f.read_bytes()
    bc.log(f"dataset {data}: {valid_clips} valid clips, {windows} captioned windows")

    Path(a.work_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="e2e.", dir=a.work_dir))
    ref_cwd, sf_cwd = work / "reference", work / "shardflow"
    ref_cwd.mkdir()
    sf_cwd.mkdir()
    common = ["--input-clip-path", data, "--output-dataset-path", "out", "--annotation-version", "v0",
              "--t5-model", model_dir]
    runs: dict[str, dict] = {}
    try:
        # shardflow
        env = dict(os.environ, SHARDFLOW_LOG="warn")
        _, wall = bc.run_timed([sf, "shard", *common, "--workers", str(workers), *a.shardflow_arg],
                               cwd=sf_cwd, env=env)
        report = json.loads((sf_cwd / "out/v0/_shardflow/report.json").read_text())
        runs["shardflow"] = {"wall_seconds": wall, "report_wall_seconds": report.get("wall_seconds"),
                             "stage_seconds": report.get("stage_seconds"), "counts": report.get("counts"),
                             "workers": workers, **bc.dataset_stats(sf_cwd / "out/v0")}
        runs["shardflow"]["windows"] = (report.get("counts") or {}).get("windows_embedded", windows)

        compare = None
        if not a.skip_reference:
            p, wall = bc.run_timed([sys.executable, bc.TOOLS / "reference_shard.py", "--backend", "hf",
                                    "--torch-threads", str(ncores), *common], cwd=ref_cwd)
            timings = {}
            for line in p.stderr.splitlines():
                if "timings {" in line:
                    timings = json.loads(line.split("timings ", 1)[1])
            runs["reference (hf)"] = {"wall_seconds": wall, "timings": timings, "windows": windows,
                                      "torch_threads": ncores, **bc.dataset_stats(ref_cwd / "out/v0")}

            bc.log("comparing (compare_datasets.py --strict-bytes --check-headers --strict-csv-order)")
            cp = subprocess.run(
                [sys.executable, str(bc.TOOLS / "compare_datasets.py"), str(ref_cwd / "out"), str(sf_cwd / "out"),
                 "--strict-bytes", "--check-headers", "--strict-csv-order"], text=True, capture_output=True)
            last = (cp.stdout.strip().splitlines() or [""])[-1]
            summaries = []
            rv, sv = ref_cwd / "out/v0", sf_cwd / "out/v0"
            for f in sorted(rv.rglob("wdinfo.json")) + [rv / "wdinfo_list.csv"]:
                g = sv / f.relative_to(rv)
                if not g.exists() or g.read_bytes() != f.read_bytes():
                    summaries.append(str(f.relative_to(rv)))
            f16 = bc.f16_agreement(rv, sv)
            ok = cp.returncode == 0 and last.endswith(": OK") and not summaries
            compare = {"ok": ok, "compare_last_line": last, "compare_returncode": cp.returncode,
                       "compare_output_tail": cp.stdout.strip().splitlines()[-40:],
                       "summary_files_differing": summaries, "f16": f16}
            print(last)
            if not ok:
                print("\n".join(compare["compare_output_tail"]))
                if summaries:
                    print("summary files differing:", summaries)
    finally:
        if a.keep:
            bc.log(f"kept outputs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for r in runs.values():
        r["clips_per_s"] = r["clips"] / r["wall_seconds"]
        r["captions_per_s"] = r["windows"] / r["wall_seconds"]
        r["mp4_mb_per_s"] = r["mp4_bytes"] / 1e6 / r["wall_seconds"]
    ref = runs.get("reference (hf)")
    for name in ("reference (hf)", "shardflow"):
        if name not in runs:
            continue
        r = runs[name]
        speed = f"{ref['wall_seconds'] / r['wall_seconds']:.2f}x" if ref else "-"
        rows.append([name, r["clips"], r["windows"], r["mp4_bytes"] / 1e6, r["wall_seconds"], r["clips_per_s"],
                     r["captions_per_s"], r["mp4_mb_per_s"], speed])
    md = [f"### End to end: reference (HF, padded, batches of 8) vs shardflow shard ({'quick' if a.quick else 'full'})",
          "", f"model `{model_dir}`, dataset `shardflow bench --generate-only --clips {n} --seed {a.seed}` "
          f"({valid_clips} clips, {windows} captions), {ncores} cores ({bc.machine()['cpu'] or 'CPU model unknown'}), shardflow --workers {workers}, "
          f"torch threads {ncores}. Wall = whole process, model load included.", "",
          bc.md_table(["run", "clips", "captions", "mp4 MB", "wall s", "clips/s", "captions/s", "MB/s",
                       "speedup"], rows)]
    if "shardflow" in runs:
        st = runs["shardflow"]["stage_seconds"] or {}
        md += ["", "shardflow stage seconds (summed over workers): "
               + ", ".join(f"{k} {v:.2f}" for k, v in sorted(st.items(), key=lambda kv: -kv[1]))]
    if ref and ref.get("timings"):
        t = ref["timings"]
        md += ["", "reference timings: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items() if isinstance(v, float))]
    if compare:
        f = compare["f16"]
        md += ["", f"compare: `{compare['compare_last_line']}`; wdinfo files identical: "
               f"{not compare['summary_files_differing']}; fp16 values bit-equal {f['f16_equal_fraction'] * 100:.3f}% "
               f"of {f['f16_values']:,}, {f['f16_more_than_1ulp']} more than 1 ulp apart, "
               f"{f['f16_out_of_tolerance']} outside 2 ulp + 1e-4, max |Δ| "
               f"{f['max_abs_diff_f16']:.3g}. **{'OK' if compare['ok'] else 'FAIL'}**"]
    result = {"machine": bc.machine(), "quick": a.quick, "count": n, "seed": a.seed, "dataset": str(data),
              "model": str(model_dir), "valid_clips": valid_clips, "windows": windows, "runs": runs,
              "compare": compare}
    bc.write_results(Path(a.out_dir), "e2e_vs_reference", result, "\n".join(md))
    return 0 if (compare is None or compare["ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
