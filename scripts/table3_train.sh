#!/usr/bin/env bash
# Train (or continue) the three Table 3 variants one after another on one thread:
# configs/table3/{fixed4,uniform,bimodal}.yaml -> runs/t3/<variant>. `--resume` with a config
# continues the run's latest checkpoint or starts it fresh (a finished run returns at once), so this
# script can be rerun after any interruption.
#   bash scripts/table3_train.sh        (400 steps per variant, 5-7 s per step on one core)
set -euo pipefail
cd "$(dirname "$0")/.."
for variant in fixed4 uniform bimodal; do
    OMP_NUM_THREADS=1 .venv/bin/dind train --config "configs/table3/$variant.yaml" out_dir="runs/t3/$variant" \
        progress=false --resume >> "runs/t3-$variant.log" 2>&1
done
