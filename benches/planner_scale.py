#!/usr/bin/env python3
"""How `shardflow shard` scales with the number of clips: peak RSS, wall time, and how soon it plans, encodes its
first caption and completes its first tar (tiny clips and the tiny T5, so planning and memory dominate).

    planner_scale.py [--sizes 10000,100000,1000000] [--bin NAME=PATH ...] [--planners streaming,gathered]
                     [--work DIR] [--model DIR] [--workers N] [--tar-mb MIB] [--shardflow-arg ARG ...] [--no-warm]
                     [--out-dir DIR] [--quick] [--nested]

For each size N: `tests/tools/make_dataset.py generate --size tiny --count N --seed S` (every clip a hard link to
one 48-frame 1280x720 mp4 of about 7 KB, one window of a 10-20 word caption; cached in --work DIR/data), then
for each binary given with `--bin NAME=PATH` (repeatable, default `today=target/release/shardflow`, so today's
binary and a later one compare in one run): `shardflow shard --workers <cores> --t5-model tests/data/t5-tiny
--target-tar-size-mb 10` under `/usr/bin/time -v` (peak RSS = "Maximum resident set size"; without GNU time
the child's getrusage, as in rss.py), each run after reading every input file into the page cache (--no-warm:
not; a cold run on a busy disk can take several times as long). From the job's report.json:
`milestone_seconds` (planning complete, first caption encoded, first tar completed; "-" for a binary whose
report lacks them). --nested: the same metadata files hard-linked into 256 subdirectories of metas/v0 by the
first two characters of their name, as a curation pipeline that shards its output writes them: a flat local
directory must be read whole before its first page is known (readdir of 1M entries takes about a second),
a nested one only up to its first subdirectory, as an object store's LIST returns its first page at once. Each binary runs once per planner of --planners (default both): `streaming` plans as the
listing goes, `gathered` (SHARDFLOW_PLANNER=gathered) plans in one step once every metadata file is read, as
`reshard` and `--append` do. Between consecutive sizes: the marginal peak RSS per clip, (RSS(N2) - RSS(N1)) / (N2 - N1)
in KiB/clip. The output is deleted after each run; the generated inputs stay in --work for the next run (about
4.5 KB of disk per clip: one metadata file and a hard link; the output needs about 11 KB per clip while it
exists). --quick: sizes 1000 and 10000. Writes <out-dir>/planner_scale.{json,md} (default
target/bench-results/) and prints lscpu's model name.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from rss import gnu_time_ok, measure  # noqa: E402

MILESTONES = ("planned", "first_caption_encoded", "first_tar_completed")


def cpu_model() -> str:
    """lscpu's "Model name" (the machine's own words for the CPU), else /proc/cpuinfo's."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.strip().startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return bc.machine()["cpu"]


def ensure_tiny_dataset(count: int, seed: int, data_dir: Path) -> tuple[Path, float | None]:
    """`make_dataset.py generate --size tiny`, cached under data_dir; (path, seconds it took or None if cached)."""
    d = data_dir / f"tiny-n{count}-s{seed}"
    if (d / ".complete").exists():
        return d, None
    if d.exists():
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    bc.log(f"generating {count} tiny clips (seed {seed}) into {d}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(bc.TOOLS / "make_dataset.py"), "generate", str(d), "--size", "tiny",
                    "--count", str(count), "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    (d / ".complete").write_text("ok\n")
    took = time.perf_counter() - t0
    bc.log(f"generated in {took:.1f} s ({took / count * 1e6:.0f} µs/clip)")
    return d, took


def nested_copy(flat: Path) -> Path:
    """`flat`'s metadata hard-linked into metas/v0/<first two characters>/ (the clips stay where the metadata's
    absolute clip_location points); cached beside it."""
    d = flat.with_name(flat.name + "-nested")
    if (d / ".complete").exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    src = flat / "metas" / "v0"
    t0 = time.perf_counter()
    for name in sorted(os.listdir(src)):
        sub = d / "metas" / "v0" / name[:2]
        sub.mkdir(parents=True, exist_ok=True)
        os.link(src / name, sub / name)
    (d / ".complete").write_text("ok\n")
    bc.log(f"nested copy of {flat.name} in {time.perf_counter() - t0:.1f} s")
    return d


def warm(data: Path) -> None:
    """Reads every input file once, so that each run starts from a warm page cache (otherwise a run right after
    generating, or after another size's output evicted the inputs, differs by several times on a busy disk)."""
    t0 = time.perf_counter()
    subprocess.run(f"find {shlex.quote(str(data))} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True)
    bc.log(f"read the inputs in {time.perf_counter() - t0:.1f} s")


def parse_bins(specs: list[str]) -> list[tuple[str, Path]]:
    if not specs:
        return [("today", bc.shardflow_bin(None))]
    bins = []
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--bin {s!r}: expected NAME=PATH")
        bins.append((name, bc.shardflow_bin(path).resolve()))
    if len({n for n, _ in bins}) != len(bins):
        raise SystemExit("--bin: each NAME once")
    return bins


def fmt(x: float | None) -> float | str:
    return "-" if x is None else x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="comma-separated clip counts (default 10000,100000,1000000)")
    ap.add_argument("--quick", action="store_true", help="sizes 1000 and 10000")
    ap.add_argument("--bin", action="append", default=[], metavar="NAME=PATH",
                    help="a shardflow binary to measure (repeatable; default today=target/release/shardflow)")
    ap.add_argument("--planners", default="gathered,streaming",
                    help="comma-separated: streaming, gathered (SHARDFLOW_PLANNER=gathered); default both")
    ap.add_argument("--work", default=str(bc.REPO / "target" / "bench-work" / "planner_scale"),
                    help="generated datasets (cached in DIR/data) and scratch outputs")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--model", default=str(bc.TINY_MODEL), help="T5 model dir (default tests/data/t5-tiny)")
    ap.add_argument("--workers", type=int, help="shardflow --workers (default: cores)")
    ap.add_argument("--tar-mb", type=int, default=10,
                    help="--target-tar-size-mb (default 10: about 1,500 tiny clips a tar, so first tar < wall)")
    ap.add_argument("--shardflow-arg", action="append", default=[], help="extra shardflow shard argument")
    ap.add_argument("--no-warm", action="store_true",
                    help="do not read the inputs into the page cache before each run")
    ap.add_argument("--nested", action="store_true",
                    help="metadata in 256 subdirectories of metas/v0 (hard links), not one flat directory")
    ap.add_argument("--out-dir", default=str(bc.DEFAULT_OUT))
    a = ap.parse_args()

    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else ([1000, 10000] if a.quick
                                                                  else [10000, 100000, 1000000])
    sizes.sort()
    planners = [p.strip() for p in a.planners.split(",") if p.strip()]
    if not planners or any(p not in ("streaming", "gathered") for p in planners):
        raise SystemExit(f"--planners {a.planners!r}: streaming and/or gathered")
    bins = [(f"{name} {planner}" if len(a.bin) > 1 else planner, sf, planner)
            for name, sf in parse_bins(a.bin) for planner in planners]
    model = Path(a.model).resolve()
    workers = a.workers or bc.cores()
    cpu = cpu_model()
    print(f"lscpu model name: {cpu}", flush=True)
    use_gnu = gnu_time_ok()
    if not use_gnu:
        bc.log("no GNU time at /usr/bin/time (apt-get install -y time); using getrusage(RUSAGE_CHILDREN)")
    env = dict(os.environ, SHARDFLOW_LOG="warn")
    work = Path(a.work).resolve()
    results: list[dict] = []
    generated: dict[int, float | None] = {}
    for n in sizes:
        data, took = ensure_tiny_dataset(n, a.seed, work / "data")
        if a.nested:
            data = nested_copy(data)
        generated[n] = took
        for name, sf, planner in bins:
            run_env = dict(env, SHARDFLOW_PLANNER=planner)
            if not a.no_warm:
                warm(data)
            run_dir = Path(tempfile.mkdtemp(prefix="run.", dir=work))
            try:
                wall, kib = measure([sf, "shard", "--input-clip-path", data, "--output-dataset-path", "out",
                                     "--annotation-version", "v0", "--t5-model", model, "--workers", str(workers),
                                     "--target-tar-size-mb", str(a.tar_mb), *a.shardflow_arg], run_dir, run_env, use_gnu)
                report = json.loads((run_dir / "out/v0/_shardflow/report.json").read_text())
            finally:
                shutil.rmtree(run_dir, ignore_errors=True)
            counts = report.get("counts", {})
            ms = report.get("milestone_seconds") or {}
            r = {"bin": name, "planner": planner, "path": str(sf), "clips": n, "written": counts.get("written"),
                 "tars": counts.get("tars"), "peak_rss_kib": kib, "peak_rss_mib": kib / 1024, "wall_seconds": wall,
                 "report_wall_seconds": report.get("wall_seconds"), **{k: ms.get(k) for k in MILESTONES},
                 "stage_seconds": report.get("stage_seconds")}
            if counts.get("written") != n:
                bc.log(f"warning: {name} wrote {counts.get('written')} of {n} clips")
            results.append(r)
            bc.log(f"{name}, {n} clips: peak RSS {kib / 1024:.1f} MiB, {wall:.1f} s, planned at "
                   f"{fmt(r['planned'])} s, first tar at {fmt(r['first_tar_completed'])} s")

    rows = []
    for name, _, _ in bins:
        prev = None
        for r in (r for r in results if r["bin"] == name):
            if prev is not None:
                r["marginal_kib_per_clip"] = (r["peak_rss_kib"] - prev["peak_rss_kib"]) / (r["clips"] - prev["clips"])
            rows.append([name, r["clips"], r["written"], r["tars"], r["peak_rss_mib"], r["wall_seconds"],
                         *(fmt(r[k]) for k in MILESTONES), fmt(r.get("marginal_kib_per_clip"))])
            prev = r
    gen = ", ".join(f"{n:,}: {t:.0f} s" for n, t in generated.items() if t is not None) or "all cached"
    md = ["### shardflow shard as the clip count grows (planner_scale.py)", "",
          f"CPU {cpu}, {bc.cores()} cores, --workers {workers}; model `{model.name}`; "
          f"`make_dataset.py generate --size tiny --seed {a.seed}`"
          f"{' (metadata nested in 256 subdirectories)' if a.nested else ' (metadata in one flat directory)'}; --target-tar-size-mb {a.tar_mb}; peak RSS from "
          f"{'/usr/bin/time -v' if use_gnu else 'getrusage(RUSAGE_CHILDREN)'}; inputs "
          f"{'not warmed' if a.no_warm else 'read into the page cache before each run'}; milestones are seconds "
          f"from the job's start (report.json `milestone_seconds`); marginal = ΔRSS / Δclips from the size before. "
          f"Generation: {gen}.", "",
          bc.md_table(["binary", "clips", "written", "tars", "peak RSS MiB", "wall s", "planned s",
                       "first encode s", "first tar s", "marginal KiB/clip"], rows)]
    bc.write_results(Path(a.out_dir), "planner_scale_nested" if a.nested else "planner_scale",
                     {"machine": dict(bc.machine(), lscpu_model_name=cpu), "model": str(model), "workers": workers,
                      "tar_mb": a.tar_mb, "nested": a.nested, "warm": not a.no_warm, "gnu_time": use_gnu, "seed": a.seed,
                      "generation_seconds": generated,
                      "bins": {n: str(p) for n, p, _ in bins}, "runs": results},
                     "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
