"""CPU benchmark of the multi-stage sampler: the 2-stage plan "4 -> 1024@0.5" on the `tiny` DiT.

Measures (batch 1, untrained weights, first-hitting unmasking, snapshot confidence):
- wall time per stage and in total at length 1024;
- the share of that time spent inside model calls (forwards + cache appends); the rest is sampler
  overhead (target < 10%);
- the stage-1 speed-up of the exact KV cache over the uncached reference path, measured at a
  shorter length (the uncached path re-runs the whole prefix for every step: quadratic cost).

Usage: python benchmarks/sampling_cpu.py [--length 1024] [--uncached-length 256] [--threads N]
Writes benchmarks/results/sampling-cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from dind import models
from dind.models import DynamicStep, UncachedStep
from dind.sampling import GenerateOptions, StagePlan, generate

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def stage_rows(result) -> list[dict]:
    rows = []
    for stage in result.trace:
        rows.append({
            "block_size": stage.block_size, "remask_ratio": stage.remask_ratio,
            "nfe": int(stage.nfe[0]), "forward_passes": stage.forward_passes,
            "wall_time_s": round(stage.wall_time_s, 3), "model_time_s": round(stage.model_time_s, 3),
            "overhead_share": round(1 - stage.model_time_s / stage.wall_time_s, 4),
        })  # fmt: skip
    return rows


def timed(model, plan: str, length: int, *, use_cache: bool, seed: int = 0):
    begin = time.perf_counter()
    result = generate(
        model,
        StagePlan.parse(plan),
        length=length,
        seed=seed,
        options=GenerateOptions(bos_id=256, step=DynamicStep() if use_cache else UncachedStep()),
    )
    return result, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--uncached-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = models.build(
        "tiny", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()
    timed(model, "4 -> 64@0.5", 64, use_cache=True)  # warm-up
    full, full_wall = timed(model, f"4 -> {args.length}@0.5", args.length, use_cache=True)
    model_time = sum(stage.model_time_s for stage in full.trace)
    short = args.uncached_length
    cached, cached_wall = timed(model, "4", short, use_cache=True)
    uncached, uncached_wall = timed(model, "4", short, use_cache=False)
    report = {
        "benchmark": "sampling_cpu",
        "model": "tiny (random init, 5.5M parameters, byte vocabulary 258)",
        "plan": f"4 -> {args.length}@0.5",
        "length": args.length,
        "batch_size": 1,
        "unmasking": "first_hitting",
        "machine": machine_info(),
        "two_stage": {
            "wall_time_s": round(full_wall, 3),
            "model_time_s": round(model_time, 3),
            "model_share": round(model_time / full_wall, 4),
            "sampler_overhead_share": round(1 - model_time / full_wall, 4),
            "stages": stage_rows(full),
        },
        "stage1_cache_speedup": {
            "length": short,
            "cached_wall_s": round(cached_wall, 3),
            "uncached_wall_s": round(uncached_wall, 3),
            "speedup": round(uncached_wall / cached_wall, 2),
            "identical_samples": bool(torch.equal(cached.tokens, uncached.tokens)),
            "cached_forward_passes": cached.trace[0].forward_passes,
            "uncached_forward_passes": uncached.trace[0].forward_passes,
        },
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "sampling-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "sampling-cpu.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    two, speed, machine = report["two_stage"], report["stage1_cache_speedup"], report["machine"]
    lines = [
        "# Sampling on CPU: `4 -> 1024@0.5` on `tiny`",
        "",
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch {machine['torch']} "
        f"with {machine['torch_threads']} threads; load average at start {machine['load_average_at_start']}. "
        "Produced by `python benchmarks/sampling_cpu.py`.",
        "",
        f"Model: {report['model']}; batch 1; first-hitting unmasking; snapshot confidence; BOS first.",
        "",
        f"## Two-stage plan `{report['plan']}` at length {report['length']}",
        "",
        f"Total wall time {two['wall_time_s']} s, of which {two['model_time_s']} s inside model calls "
        f"({two['model_share']:.1%}); sampler overhead {two['sampler_overhead_share']:.1%} (target < 10%).",
        "",
        "| stage | block | gamma | NFE (BD3-LM) | raw passes | wall s | model s | overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, stage in enumerate(two["stages"], start=1):
        block = "global" if stage["block_size"] is None else stage["block_size"]
        lines.append(
            f"| {index} | {block} | {stage['remask_ratio']} | {stage['nfe']} | {stage['forward_passes']} | "
            f"{stage['wall_time_s']} | {stage['model_time_s']} | {stage['overhead_share']:.1%} |"
        )
    lines += [
        "",
        f"## Stage 1 (B = 4) with and without the KV cache, length {speed['length']}",
        "",
        f"Cached {speed['cached_wall_s']} s ({speed['cached_forward_passes']} passes) vs uncached "
        f"{speed['uncached_wall_s']} s ({speed['uncached_forward_passes']} passes): speed-up "
        f"x{speed['speedup']}; identical samples: {speed['identical_samples']}. The uncached path "
        "re-runs the whole prefix at every step, so the speed-up grows roughly linearly with length.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
