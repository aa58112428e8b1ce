#!/usr/bin/env bash
# GPU checks and benchmarks in one call, run on a CUDA host from the repo root:
#   benches/gpu/run_device.sh BIN OUTDIR [STEPS]
# BIN: a `cargo build --release --features cuda` shardflow (stripped is fine). Needs python3
# with torch, transformers, safetensors and numpy (the HF rows and the random models).
# STEPS, comma-separated, in this order (default parity,sample,large,11b,profile):
#   parity   the t5-tiny fixture on cuda in fp32/bf16/fp16 against HF (benches/gpu/parity.py),
#            and fp32/bf16 with SHARDFLOW_CUDA_GEMM=cublas
#   sample   shard the sample dataset with --device cuda, compare with the reference output
#   large    random t5-large, 1,000 captions: ours fp32 and bf16 (first run with an empty
#            autotune/kernel cache, then the best of two warm ones), ours bf16 unfused, ours with the linear layers through cuBLAS
#            (SHARDFLOW_CUDA_GEMM=cublas, unfused), HF length-sorted fp32 and bf16
#   11b      random t5-11b shape in bf16, 500 captions: ours and HF length-sorted, batch 64
#   profile  cubecl's per-kernel times for ours bf16 on t5-large (200 captions)
#   umt5-xxl random umt5-xxl, 500 captions: ours and HF bf16
# Results land in OUTDIR: log.txt, rows.jsonl, results.md (the tables), gpu.txt. Each step has
# its own time limit, so a slow one cannot eat the others.
# A dry run of the script itself on a CPU (small shapes, fp32 only):
#   SF_DEVICE=cpu DTYPES=fp32 LARGE_SHAPE=small N_LARGE=40 BIG_SHAPE=small N_BIG=20 \
#     benches/gpu/run_device.sh target/release/shardflow /tmp/dry
set -uo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2"); STEPS=${3:-parity,sample,large,11b,profile}
case $STEPS in large) STEPS=parity,sample,large,profile ;; esac
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
want() { [[ ",$STEPS," == *",$1,"* ]]; }
ROWS=$OUT/rows.jsonl
S=benches/gpu/summarize.py
export PYTHONUNBUFFERED=1
# a fresh autotune/PTX cache, so the first run shows what tuning costs
export SHARDFLOW_CACHE_DIR=/tmp/sf-cache && rm -rf "$SHARDFLOW_CACHE_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>/dev/null \
  || lscpu | sed -n 's/^Model name: *//p' > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"
GPU=$(cut -d, -f1 "$OUT/gpu.txt")
# NVRTC and CUDA's headers: the toolkit's, else the pip wheels'
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.dirname(m.__file__) + "/lib")' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
step() { echo; echo "== $* ($(date +%T))"; }
DEV=${SF_DEVICE:-cuda}; DTYPES=${DTYPES:-fp32 bf16}
LARGE_SHAPE=${LARGE_SHAPE:-large}; N_LARGE=${N_LARGE:-1000}
BIG_SHAPE=${BIG_SHAPE:-11b}; N_BIG=${N_BIG:-500}
BIG_DTYPE=bf16; [[ " $DTYPES " == *" bf16 "* ]] || BIG_DTYPE=fp32

# the 11b checkpoint (9.6 GB) is written while the short steps run
BIG=/tmp/t5-$BIG_SHAPE-$BIG_DTYPE
if want 11b && [ ! -f $BIG/model.safetensors ]; then
  python3 benches/gpu/random_t5.py $BIG --shape $BIG_SHAPE --dtype $BIG_DTYPE > /tmp/gen-big.txt 2>&1 &
  GEN11=$!
fi

if want parity; then
  step "parity on the t5-tiny fixture ($DEV, each precision)"
  for dt in $DTYPES $([ "$DEV" = cpu ] || echo fp16); do
    timeout 120 "$BIN" encode --device $DEV --t5-dtype $dt --t5-model tests/data/t5-tiny \
      --captions tests/data/t5-tiny/captions.json --output "/tmp/tiny-$dt.safetensors" >/dev/null \
      && python3 benches/gpu/parity.py "/tmp/tiny-$dt.safetensors" --label "$DEV-$dt"
    echo "parity $DEV-$dt exit $?"
  done
  for dt in $DTYPES; do
    SHARDFLOW_CUDA_GEMM=cublas timeout 120 "$BIN" encode --device $DEV --t5-dtype $dt --t5-model tests/data/t5-tiny \
      --captions tests/data/t5-tiny/captions.json --output "/tmp/tiny-$dt-cublas.safetensors" >/dev/null \
      && python3 benches/gpu/parity.py "/tmp/tiny-$dt-cublas.safetensors" --label "$DEV-$dt-cublas"
    echo "parity $DEV-$dt-cublas exit $?"
  done
fi

if want sample; then
  step "shard the sample dataset on $DEV, compare with the reference output"
  rm -rf /tmp/sd /tmp/sdout && cp -r tests/data/sample-dataset /tmp/sd
  timeout 120 "$BIN" shard --device $DEV --workers 2 --input-clip-path /tmp/sd --output-dataset-path /tmp/sdout \
    --t5-model tests/data/t5-tiny --remap-clip-location /cosmos-curate-fixtures/sample-dataset=/tmp/sd \
    --max-rejected-fraction 0.05 >/dev/null; echo "shard exit $?"
  python3 tests/tools/compare_datasets.py tests/data/sample-dataset-expected /tmp/sdout \
    --strict-bytes --check-headers --strict-csv-order | tail -1
fi

# ours MODEL CAPTIONS DTYPE LABEL [encode args...]: the fastest run's row (with TAG_COLD=1
# also the first run's, which compiled and tuned)
ours() {
  local m=$1 caps=$2 dt=$3 label=$4; shift 4
  timeout 240 "$BIN" encode --device $DEV --t5-dtype "$dt" --t5-model "$m" --captions "$caps" "$@" \
    | python3 $S tag --impl "$label" --model "$m" --captions "$caps" --dtype "$dt" ${TAG_COLD:+--cold} | tee -a "$ROWS"
}
hf() {
  local m=$1 caps=$2 dt=$3 batch=$4
  timeout 240 python3 benches/gpu/hf_encode.py "$m" "$caps" --device $DEV --mode sorted --dtype "$dt" --batch "$batch" \
    | python3 $S tag --impl "hf-sorted-batch$batch" --model "$m" --captions "$caps" --dtype "$dt" | tee -a "$ROWS"
}

if want large; then
  step "encode benchmark on a random t5-$LARGE_SHAPE"
  M=/tmp/t5-$LARGE_SHAPE
  [ -f $M/model.safetensors ] || python3 benches/gpu/random_t5.py $M --shape $LARGE_SHAPE
  python3 benches/gpu/make_captions.py /tmp/caps.json --count $N_LARGE
  for dt in $DTYPES; do TAG_COLD=1 ours $M /tmp/caps.json $dt "ours-fused" --repeat 3; done
  SHARDFLOW_CUDA_FUSION=0 ours $M /tmp/caps.json $BIG_DTYPE "ours-unfused" --repeat 2
  for dt in $DTYPES; do
    SHARDFLOW_CUDA_GEMM=cublas ours $M /tmp/caps.json $dt "ours-cublas-linears (unfused)" --repeat 2
  done
  for dt in $DTYPES; do hf $M /tmp/caps.json $dt 64; done
fi

if want 11b; then
  step "t5-$BIG_SHAPE shape, $BIG_DTYPE, batches of 64 captions up to 512 tokens"
  [ -n "${GEN11:-}" ] && { wait "$GEN11"; cat /tmp/gen-big.txt; }
  python3 benches/gpu/make_captions.py /tmp/caps-big.json --count $N_BIG
  TAG_COLD=1 ours $BIG /tmp/caps-big.json $BIG_DTYPE "ours-fused" --repeat 2
  nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>/dev/null | sed 's/^/after ours, GPU memory in use: /'
  hf $BIG /tmp/caps-big.json $BIG_DTYPE 64
fi

if want profile; then
  step "per-kernel profile: ours $BIG_DTYPE on t5-$LARGE_SHAPE, 200 captions"
  python3 benches/gpu/make_captions.py /tmp/caps200.json --count 200
  mkdir -p /tmp/prof && rm -f /tmp/prof/*.log
  # cubecl reads cubecl.toml from the working directory; medium level times every kernel
  printf '[profiling.logger]\nlevel = "medium"\nfile = "/tmp/prof/kernels.log"\n[autotune.logger]\nlevel = "minimal"\nfile = "/tmp/prof/autotune.log"\n' > /tmp/prof/cubecl.toml
  (cd /tmp/prof && timeout 180 "$BIN" encode --device $DEV --t5-dtype $BIG_DTYPE --t5-model /tmp/t5-$LARGE_SHAPE \
     --captions /tmp/caps200.json --repeat 1)
  touch /tmp/prof/kernels.log
  python3 $S profile /tmp/prof/kernels.log > "$OUT/profile.md"; cat "$OUT/profile.md"
  tail -c 200000 /tmp/prof/autotune.log > "$OUT/autotune.log" 2>/dev/null
fi

if want umt5-xxl; then
  step "random umt5-xxl, bf16"
  M=/tmp/umt5-xxl
  [ -f $M/model.safetensors ] || python3 benches/gpu/random_t5.py $M --shape umt5-xxl --dtype bf16
  python3 benches/gpu/make_captions.py /tmp/caps500.json --count 500
  TAG_COLD=1 ours $M /tmp/caps500.json bf16 "ours-fused" --repeat 2
  hf $M /tmp/caps500.json bf16 64
fi

step "tables"
python3 $S table "$ROWS" --gpu "$GPU" | tee "$OUT/results.md"
du -sh "$SHARDFLOW_CACHE_DIR" 2>/dev/null | sed 's/^/autotune and PTX cache: /'
