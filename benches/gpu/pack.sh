#!/usr/bin/env bash
# Builds the CUDA binary here (no GPU or CUDA toolkit needed: cudarc loads the driver, NVRTC
# and the rest at run time) and packs it for a GPU host: .gpu/shardflow.xz, about 14 MB
# (stripped, 60 MB unpacked), small enough to travel with the working tree.
#   benches/gpu/pack.sh
# then on the GPU host, from the repo root:
#   xz -dc .gpu/shardflow.xz > /tmp/shardflow && chmod +x /tmp/shardflow \
#     && benches/gpu/run_device.sh /tmp/shardflow OUTDIR
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
cargo build --release --locked --features cuda
mkdir -p .gpu
strip -o .gpu/shardflow target/release/shardflow
xz -T0 -6 -f .gpu/shardflow
ls -l .gpu/shardflow.xz
