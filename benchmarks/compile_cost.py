"""What ``CompiledStep`` costs before its first sample: compile time in a fresh process, cold and
with inductor's on-disk caches warm from an earlier process.

    python benchmarks/compile_cost.py [--preset tiny] [--length 256] [--batch-size 1]

Each measurement runs in a new Python process (so nothing is cached in memory): the first with
an empty cache directory, the next ones with the directory the first left behind (inductor's
FX graph cache and its compiled kernels; TORCHINDUCTOR_CACHE_DIR). It times the first
``generate`` call of a one-stage plan (which compiles the step and the append for the block
width) and a second call in the same process (the steady state). Writes
benchmarks/results/compile-cost.md with the machine and its load average: on a loaded machine the
compile takes several times longer (it is CPU-bound C++ compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from backbone_cpu import cpu_model  # the benchmarks' shared machine line

RESULTS = Path(__file__).resolve().parent / "results" / "compile-cost.md"

CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
import dind
from dind.sampling import GenerateOptions, StagePlan, generate
preset, length, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = dind.load(preset)
options = GenerateOptions(bos_id=model.mask_id - 1, step=dind.CompiledStep())
plan = StagePlan.parse("4")
times = []
for _ in range(2):
    began = time.perf_counter()
    generate(model, plan, length=length, batch_size=batch, seed=0, options=options)
    times.append(time.perf_counter() - began)
print(json.dumps(times))
"""


def _child(cache_dir: str, args: argparse.Namespace) -> tuple[float, float, float]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache_dir}
    load = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, args.preset, str(args.length), str(args.batch_size)],
        capture_output=True, text=True, env=env, check=True, timeout=1800,
    )  # fmt: skip
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    return first, second, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warm-runs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        rows.append(("cold (empty cache directory)", *_child(cache_dir, args)))
        for index in range(args.warm_runs):
            rows.append((f"warm on-disk cache, process {index + 2}", *_child(cache_dir, args)))
    import torch

    lines = [
        "# `CompiledStep`: compile cost, cold and with inductor's on-disk cache",
        "",
        f"`python benchmarks/compile_cost.py --preset {args.preset} --length {args.length} "
        f"--batch-size {args.batch_size}`: a fresh process per row, one-stage plan `4` (block 4), "
        "1 thread; first `generate` call (compiles) and a second call in the same process.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}.",
        "",
        "| process | first call (s) | second call (s) | load average at start |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {first:.1f} | {second:.2f} | {load:.2f} |" for name, first, second, load in rows),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
