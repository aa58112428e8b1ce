#!/usr/bin/env bash
# GPU checks and benchmarks, run on a CUDA host from the repo root:
#   benches/gpu/run_device.sh BIN OUTDIR [large|11b|umt5-xxl]
# BIN: a `cargo build --release --features cuda` shardflow. Needs python3 with torch,
# transformers, safetensors and numpy (for the HF comparison and the random model).
set -uo pipefail
BIN=$1; OUT=$2; SHAPE=${3:-large}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
# NVRTC: the toolkit's, else the pip wheel's
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.dirname(m.__file__) + "/lib")' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done

echo "== parity on the t5-tiny fixture (cuda, each precision)"
for dt in fp32 bf16 fp16; do
  "$BIN" encode --device cuda --t5-dtype $dt --t5-model tests/data/t5-tiny \
    --captions tests/data/t5-tiny/captions.json --output "$OUT/tiny-$dt.safetensors" >/dev/null \
    && python3 benches/gpu/parity.py "$OUT/tiny-$dt.safetensors" --label "cuda-$dt"
  echo "parity cuda-$dt exit $?"
done

echo "== shard the sample dataset on cuda, compare with the reference output"
rm -rf /tmp/sd /tmp/sdout && cp -r tests/data/sample-dataset /tmp/sd
"$BIN" shard --device cuda --workers 2 --input-clip-path /tmp/sd --output-dataset-path /tmp/sdout \
  --t5-model tests/data/t5-tiny --remap-clip-location /cosmos-curate-fixtures/sample-dataset=/tmp/sd
python3 tests/tools/compare_datasets.py tests/data/sample-dataset-expected /tmp/sdout \
  --strict-bytes --check-headers --strict-csv-order | tail -1

echo "== encode benchmark on a random t5-$SHAPE"
M=/tmp/t5-$SHAPE
[ -f $M/model.safetensors ] || python3 benches/gpu/random_t5.py $M --shape $SHAPE
python3 benches/gpu/make_captions.py /tmp/caps.json --count 2000
for dt in fp32 bf16; do
  timeout 150 "$BIN" encode --device cuda --t5-dtype $dt --t5-model $M --captions /tmp/caps.json \
    --batch-size 512 --max-batch-tokens 131072 --repeat 2 | sed "s/^/ours-$dt /"
done
python3 benches/gpu/hf_encode.py $M /tmp/caps.json --mode padded --dtype fp32 --batch 64
python3 benches/gpu/hf_encode.py $M /tmp/caps.json --mode sorted --dtype fp32 --batch 64
python3 benches/gpu/hf_encode.py $M /tmp/caps.json --mode sorted --dtype bf16 --batch 64
