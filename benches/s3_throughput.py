#!/usr/bin/env python3
"""S3 throughput of `shardflow shard` against a loopback S3 server (moto_server).

Builds a dataset of large clips (random bytes, --clip-mb each; binning reads only metadata,
so the bytes need not be real video), starts `moto_server` on 127.0.0.1 (or uses
--endpoint), uploads the input with boto3, then times three runs with the tiny T5 model so
that storage, not the encoder, dominates:

  local → S3   (multipart uploads of the tars)
  S3 → local   (listing, metadata and clip reads)
  S3 → S3

and reports MB/s = clip bytes moved / job wall time (from report.json). Every output is
checked against the local → local run with compare_datasets.py --strict-bytes.

  python3 benches/s3_throughput.py [--clips 40] [--clip-mb 8] [--shardflow BIN] [--endpoint URL]

Needs moto[server] and boto3 (the test venv has both: .venv/bin/python3). Results go to
target/bench-results/s3_throughput.json and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_OUT, DEFAULT_SHARDFLOW, REPO, TINY_MODEL, TOOLS, log, machine  # noqa: E402

SAMPLE = REPO / "tests" / "data" / "sample-dataset"
SAMPLE_ROOT = "/cosmos-curate-fixtures/sample-dataset"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_dataset(dst: Path, clips: int, clip_mb: float) -> int:
    """Clips of clip_mb MiB, metadata copied from one valid sample clip. Returns total bytes."""
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "metas" / "v0").mkdir(parents=True)
    (dst / "clips").mkdir()
    template = None
    for p in sorted((SAMPLE / "metas" / "v0").iterdir()):
        try:
            m = json.loads(p.read_text())
        except ValueError:
            continue
        if m.get("valid") and min(m["width"], m["height"]) >= 720 and m["windows"] and all(
            isinstance(w.get("qwen_caption"), str) for w in m["windows"]
        ):
            template = m
            break
    assert template is not None
    rng = random.Random(1)
    total = 0
    size = int(clip_mb * 1024 * 1024)
    for i in range(clips):
        uuid = f"clip-{i:05d}"
        data = rng.randbytes(size)
        (dst / "clips" / f"{uuid}.mp4").write_bytes(data)
        m = dict(template)
        m["span_uuid"] = uuid
        m["clip_location"] = f"{SAMPLE_ROOT}/clips/{uuid}.mp4"
        m["num_bytes"] = size
        (dst / "metas" / "v0" / f"{uuid}.json").write_text(json.dumps(m, indent=4))
        total += size
    return total


def run(cmd: list[str], env: dict) -> None:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--clip-mb", type=float, default=8.0)
    ap.add_argument("--shardflow", default=str(DEFAULT_SHARDFLOW))
    ap.add_argument("--endpoint", default=None, help="use this S3 server instead of starting moto_server")
    ap.add_argument("--workdir", default=str(REPO / "target" / "bench-s3"))
    args = ap.parse_args()

    work = Path(args.workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    data = work / "in"
    total = make_dataset(data, args.clips, args.clip_mb)
    log(f"dataset: {args.clips} clips, {total / 1e6:.0f} MB")

    moto = None
    endpoint = args.endpoint
    if endpoint is None:
        port = free_port()
        moto_bin = Path(sys.executable).parent / "moto_server"
        moto = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.1)
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_METADATA_ENDPOINT="http://127.0.0.1:9", SHARDFLOW_LOG="warn")
    s3util = [sys.executable, str(TOOLS / "s3util.py")]
    try:
        run(s3util + ["mkbucket", "bench"], env)
        t = time.time()
        run(s3util + ["upload", str(data), "s3://bench/in"], env)
        boto_up = time.time() - t
        log(f"boto3 upload of the input: {total / 1e6 / boto_up:.0f} MB/s")

        def shard(inp: str, out: str, remap: str) -> tuple[Path, float]:
            cmd = [args.shardflow, "shard", "--input-clip-path", inp, "--output-dataset-path", out,
                   "--t5-model", str(TINY_MODEL), "--remap-clip-location", f"{SAMPLE_ROOT}={remap}"]
            run(cmd, env)
            if out.startswith("s3://"):
                local = work / ("dl-" + out.rsplit("/", 1)[1])
                run(s3util + ["download", out, str(local)], env)
            else:
                local = Path(out)
            report = json.loads((local / "v0" / "_shardflow" / "report.json").read_text())
            return local, report["wall_seconds"]

        results = {}
        base, secs = shard(str(data), str(work / "local"), str(data))
        results["local → local"] = secs
        for name, inp, out, remap in [
            ("local → S3", str(data), "s3://bench/out-ls3", str(data)),
            ("S3 → local", "s3://bench/in", str(work / "s3-local"), "s3://bench/in"),
            ("S3 → S3", "s3://bench/in", "s3://bench/out-s3s3", "s3://bench/in"),
        ]:
            local, secs = shard(inp, out, remap)
            results[name] = secs
            r = subprocess.run([sys.executable, str(TOOLS / "compare_datasets.py"), str(base), str(local),
                                "--strict-bytes", "--check-headers", "--strict-csv-order"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{name}: output differs from local → local:\n{r.stdout[-2000:]}")
            log(f"{name}: {secs:.2f} s, {total / 1e6 / secs:.0f} MB/s (output identical)")
    finally:
        if moto is not None:
            moto.terminate()

    rows = [{"run": k, "seconds": round(v, 3), "mb_per_s": round(total / 1e6 / v, 1)} for k, v in results.items()]
    out = {"clips": args.clips, "clip_mb": args.clip_mb, "total_mb": round(total / 1e6, 1),
           "boto3_upload_mb_per_s": round(total / 1e6 / boto_up, 1), "runs": rows, "machine": machine()}
    DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
    (DEFAULT_OUT / "s3_throughput.json").write_text(json.dumps(out, indent=2))
    print(f"\n### S3 throughput ({out['total_mb']} MB of clips, {args.clips} × {args.clip_mb} MiB, moto_server on loopback)\n")
    print("| run | wall s | MB/s |\n|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['seconds']} | {r['mb_per_s']} |")
    print(f"| boto3 upload of the input (for scale) | {boto_up:.2f} | {out['boto3_upload_mb_per_s']} |")


if __name__ == "__main__":
    main()
