"""Table 1's long row at small scale: sampling at twice the model's context, with and without windows.

    python benchmarks/long_window.py [--num-samples 16] [--batch-size 8] [--model demo]

The long row of ``dind reproduce`` (``dind.eval.reproduce_long``) alone, for one model: stage 1
and DiD at twice its context, windowed (dind's default) and unwindowed (the same weights declared
with the longer context), the same seeds everywhere, scored by both shipped judges, with the paired
verdicts. Writes benchmarks/results/long-window-cpu.md and keeps the samples in
benchmarks/results/long-window-samples/ (a rerun reuses them).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from dind.eval.reproduce_long import generate_long, long_section, score_long
from dind.eval.reproduce_plans import ReproduceConfig
from dind.shipped import shipped_path

RESULTS = Path(__file__).resolve().parent / "results"
JUDGES = ("judge-shakespeare", "judge-kn-shakespeare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS / "long-window-cpu.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    judges = tuple(str(shipped_path(name, "judge", parameter="--judge")) for name in JUDGES)
    config = ReproduceConfig(
        models=(args.model,), judges=judges, num_samples=args.num_samples, batch_size=args.batch_size,
        seed=args.seed, long_row=True, device=args.device,
    )  # fmt: skip
    before, began = os.getloadavg()[0], time.perf_counter()
    records = generate_long(config, args.out.with_name(args.out.stem + "-samples"), progress=True)
    score_long(config, records)
    lines = [
        "# Beyond the context: windows at twice the model's context (CPU)",
        "",
        f"`python benchmarks/long_window.py --model {args.model} --num-samples {args.num_samples} "
        f"--batch-size {args.batch_size} --device {args.device}`. Machine: {os.cpu_count()} cores, "
        f"torch {torch.__version__}, 1 thread; load average {before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; {time.perf_counter() - began:.0f} s (samples on disk reused).",
        "",
        *long_section(records, config),
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
