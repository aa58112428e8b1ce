#!/usr/bin/env bash
# Runs the Python benchmarks (encode_vs_torch, e2e_vs_reference, rss) and collects their markdown tables
# into target/bench-results.md.
#
#   benches/run_all.sh [--quick] [ARGS...]
#
# --quick (and any other ARGS, e.g. --shardflow BIN or --model DIR) is passed to every script; a script
# that does not know an argument fails, so pass script-specific options by running that script alone.
# Environment: PYTHON (default /work/bench-venv/bin/python3 if present, else python3; needs torch,
# transformers, safetensors, numpy), SHARDFLOW (binary, default target/release/shardflow),
# T5_MODEL (model for encode_vs_torch and e2e_vs_reference; default: a random t5-small made under
# target/bench-models/). The shardflow binary must be built first: cargo build --release.
# The per-script JSON results are in target/bench-results/. The exit status is non-zero if any
# script failed (e.g. an output mismatch), after all of them ran.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /work/bench-venv/bin/python3 ]]; then PYTHON=/work/bench-venv/bin/python3; else PYTHON=python3; fi
fi
SHARDFLOW="${SHARDFLOW:-$ROOT/target/release/shardflow}"
RESULTS="$ROOT/target/bench-results"
OUT_MD="$ROOT/target/bench-results.md"
MODE=full
for a in "$@"; do [[ "$a" == "--quick" ]] && MODE=quick; done

if [[ ! -x "$SHARDFLOW" ]]; then
  echo "run_all.sh: no shardflow binary at $SHARDFLOW (cargo build --release, or set SHARDFLOW)" >&2
  exit 2
fi
mkdir -p "$RESULTS"

NPROC="$(nproc)"
CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
MEM="$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1024/1024}' /proc/meminfo)"
REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (uncommitted changes)' || true)"
TORCH="$("$PYTHON" -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")' 2>/dev/null || echo 'torch: not importable')"
echo "machine: nproc $NPROC, CPU: $CPU, memory $MEM"
echo "shardflow $REV$DIRTY ($SHARDFLOW); python $PYTHON: $TORCH; mode: $MODE"

model_args=()
[[ -n "${T5_MODEL:-}" ]] && model_args=(--model "$T5_MODEL")

status=0
run() {
  local name="$1"; shift
  echo
  echo "=== $name $* ==="
  rm -f "$RESULTS/$name.md"
  if ! "$PYTHON" "$ROOT/benches/$name.py" --shardflow "$SHARDFLOW" --out-dir "$RESULTS" "$@"; then
    echo "run_all.sh: $name FAILED" >&2
    status=1
  fi
}

run encode_vs_torch "${model_args[@]}" "$@"
run e2e_vs_reference "${model_args[@]}" "$@"
run rss "$@"

{
  echo "# shardflow benchmarks ($MODE)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); shardflow $REV$DIRTY; machine: nproc $NPROC, CPU: $CPU, memory $MEM;"
  echo "$TORCH."
  for name in encode_vs_torch e2e_vs_reference rss; do
    echo
    if [[ -f "$RESULTS/$name.md" ]]; then cat "$RESULTS/$name.md"; else echo "### $name: FAILED (no result)"; fi
  done
} > "$OUT_MD"
echo
echo "wrote $OUT_MD"
exit $status
