#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the default test suite (slow and GPU tests excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q -m "not slow and not gpu" "$@"
