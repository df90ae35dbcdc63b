#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh), lint (ruff check, ruff format --check) and run the default test
# suite (slow and GPU tests excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# lint first: seconds, and a style error fails the run before the tests start
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
exec .venv/bin/python -m pytest -q -m "not slow and not gpu" "$@"
