#!/usr/bin/env bash
# Create .venv and install dind with its test tools. Idempotent; works offline when the
# registries (or pip's find-links) hold the wheels.
# On a machine without an NVIDIA GPU, torch is pinned to the CPU build 2.13.0 here (not in
# pyproject.toml) so that a bare `torch` requirement does not pull multi-GB CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    .venv/bin/pip install -q torch
  else
    .venv/bin/pip install -q "torch==${DIND_TORCH_VERSION:-2.13.0}"
  fi
fi
.venv/bin/pip install -q -e ".[dev]"
