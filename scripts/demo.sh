#!/usr/bin/env bash
# Set up and run the main job: Diffusion-in-Diffusion sampling with the embedded tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/dind demo "$@"
