#!/usr/bin/env bash
# One prepared run for a session that has a GPU machine: the GPU tests, then the 110M backbone,
# training and sampling benchmarks. Results land in $OUT (default benchmarks/results); each step
# has its own time limit, so one slow step cannot eat the whole budget, and a failure does not
# stop the steps after it.
#   OUT=/path/to/out bash benchmarks/gpu_session.sh
# Expects torch with CUDA and dind's dependencies importable (the device machine has them; the
# package is used from src/ through PYTHONPATH, so no install is needed).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
step() {  # step NAME SECONDS COMMAND...
    local name=$1 seconds=$2
    shift 2
    echo "== $name (limit ${seconds}s)"
    timeout "$seconds" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name: exit $?"
    tail -n 15 "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
step gpu-tests 240 python -m pytest -q -m gpu -p no:cacheprovider tests
step backbone-gpu 180 python benchmarks/backbone_gpu.py --out "$OUT/backbone-gpu"
step training-gpu 180 python benchmarks/training_gpu.py --out "$OUT"
