#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md: repro/bench.py --device cuda for code2vec and code2seq (jdk-top10 epochs)
# and GREAT at the study's scale (one step of 250,000 training samples, measured on every training and
# eval sample), after a 25,000-sample step that calibrates the extrapolation if the big one is cut
# short. Each run has its own time limit, so the whole script stays under 8 minutes.
#
#   bash repro/gpu_bench.sh [OUT]        # figures as OUT/<run>.json, all output in OUT/bench.log (default gpu-bench/)
#
# WORK (default /tmp/codemem-gpu-bench) holds one work folder per run: samples already there (a copy
# of a pipeline's build/samples) are reused, otherwise bench.py fetches and extracts them first.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bench}
work=${WORK:-/tmp/codemem-gpu-bench}
mkdir -p "$out"

run() {  # run NAME SECONDS ARGS...: one bench.py run under a time limit, its log and figures kept
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s): bench.py --device cuda $*" | tee -a "$out/bench.log"
  PYTHONUNBUFFERED=1 timeout "$limit" "${PYTHON:-python3}" repro/bench.py --device cuda --workdir "$work/$name" \
    --json "$out/$name.json" "$@" 2>&1 | tee -a "$out/bench.log"
  echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$out/bench.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
run code2vec 60 --epochs 5
run code2seq 90 --set model=code2seq --epochs 2
run great-25k 75 --set dataset=stdlib-great --set model=great --set train.samples_per_step=25000 \
  --set train.measure_samples=2000 --epochs 1
run great-250k 230 --set dataset=stdlib-great --set model=great --set train.samples_per_step=250000 \
  --set train.measure_samples=0 --epochs 1
