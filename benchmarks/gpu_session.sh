#!/usr/bin/env bash
# One prepared run for a session that has a GPU machine: the GPU tests, then the 110M backbone,
# training and sampling benchmarks. Results land in $OUT (default benchmarks/results); each step
# has its own time limit, so one slow step cannot eat the whole budget, and a failure does not
# stop the steps after it.
#   OUT=/path/to/out bash benchmarks/gpu_session.sh
# A bare GPU machine: the set-up below installs what is missing (torch with CUDA is expected; dind's
# other dependencies are installed from pyproject.toml if an import fails; flash-attn is optional
# and not installed). The package is used from src/ through PYTHONPATH.
# Steps, each with its own time cap (the caps add up to 10 minutes: 120 + 90 + 90 + 90 + 150 + 60 s):
# GPU tests, backbone, training, decode (issue 12's cached-step and training-peak targets), the
# paper's shapes end to end (110M, GPT-2 BPE, L = 1024 and 2048 with BD3-LM's window rule,
# GPT-2-Large-shaped judge) and Table 1's long row (benchmarks/long_window.py, windows vs none).
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
if ! python -c "import attrs, einops, transformers, tokenizers, safetensors, tqdm, yaml, hypothesis" 2>/dev/null; then
    echo "== set-up: installing dind's dependencies (pip install -e '.[dev]' --no-deps for dind itself)"
    python -m pip install -q attrs einops "transformers>=4.40" tokenizers safetensors tqdm pyyaml hypothesis \
        matplotlib numpy pytest > "$OUT/setup.log" 2>&1 || tail -n 20 "$OUT/setup.log"
fi
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
step gpu-tests 120 python -m pytest -q -m gpu -p no:cacheprovider tests
step backbone-gpu 90 python benchmarks/backbone_gpu.py --out "$OUT/backbone-gpu"
step training-gpu 90 python benchmarks/training_gpu.py --out "$OUT"
step decode-gpu 90 python benchmarks/decode_gpu.py --out-dir "$OUT"
step paper-shapes-gpu 150 python benchmarks/paper_shapes.py --device cuda --full --train-steps 4 --out "$OUT/paper-shapes-gpu.md"
step long-window-gpu 60 python benchmarks/long_window.py --device cuda --num-samples 16 --batch-size 16 --out "$OUT/long-window-gpu.md"
