"""CPU speed of the DiT backbone: forward tokens/s at length 1024 (batch 1, fp32 and bf16 autocast)
for the "tiny" and "bd3lm-110m" presets, and the cost of one cached block-4 forward against a full
forward. Writes benchmarks/results/backbone-cpu.{md,json}.

    .venv/bin/python benchmarks/backbone_cpu.py [--repeats 2] [--out benchmarks/results/backbone-cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from dind.models import build

LENGTH = 1024
BLOCK = 4


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(function, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def precision(name: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()


def measure(preset: str, repeats: int) -> list[dict]:
    model = build(preset, init="random", generator=torch.Generator().manual_seed(0), dropout=0.0).eval()
    tokens = torch.randint(0, model.vocab_size - 1, (1, LENGTH), generator=torch.Generator().manual_seed(1))
    rows = []
    for dtype in ("fp32", "bf16"):
        with torch.inference_mode(), precision(dtype):
            full = timed(lambda: model.logits(tokens, block_size=BLOCK), repeats)
            cache = model.new_cache(1, LENGTH)
            # one wide append fills the prefix: its contents do not matter for timing
            model.append_to_cache(tokens[:, : LENGTH - BLOCK], cache=cache, start=0)
            cached = timed(
                lambda cache=cache: model.cached_logits(
                    tokens[:, LENGTH - BLOCK :], cache=cache, start=LENGTH - BLOCK
                ),
                5 * repeats,
            )
        rows.append(
            {
                "preset": preset,
                "precision": dtype,
                "length": LENGTH,
                "batch": 1,
                "full_forward_s": full,
                "tokens_per_s": LENGTH / full,
                "cached_block_forward_s": cached,
                "cached_block_over_full": cached / full,
            }
        )
        print(
            f"{preset:>11} {dtype}: full {full * 1e3:8.1f} ms ({LENGTH / full:8.0f} tok/s); cached block of "
            f"{BLOCK} after {LENGTH - BLOCK}: {cached * 1e3:7.2f} ms ({cached / full:.3%} of a full forward)",
            flush=True,
        )
    return rows


def markdown(machine: dict, rows: list[dict]) -> str:
    lines = [
        "# Backbone CPU benchmark",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores visible, {machine['threads']} torch threads, "
        f"torch {machine['torch']}, Python {machine['python']}. Batch 1, length {LENGTH}, sdpa backend, "
        f"inference mode; median of the timed repeats after one warm-up. 1-minute load average before/after: "
        f"{machine['load_average_1m']} (other jobs on a shared machine inflate the times).",
        "",
        "| preset | precision | full forward (ms) | tokens/s | cached block-4 forward (ms) | cached / full |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['precision']} | {row['full_forward_s'] * 1e3:.1f} | "
            f"{row['tokens_per_s']:.0f} | "
            f"{row['cached_block_forward_s'] * 1e3:.2f} | {row['cached_block_over_full']:.2%} |"
        )
    lines += [
        "",
        f"The cached forward is one block of {BLOCK} queries attending to {LENGTH - BLOCK} cached "
        "positions (the last block of a generation, the most expensive one); a sampler without a cache "
        "would run the full forward at every step instead.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["tiny", "bd3lm-110m"])
    parser.add_argument("--out", default="benchmarks/results/backbone-cpu", help="output path without suffix")
    args = parser.parse_args()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    load_before = os.getloadavg()[0]
    rows = [row for preset in args.presets for row in measure(preset, args.repeats)]
    machine["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(machine, rows))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
