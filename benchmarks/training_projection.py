"""The training step with the output layer at every noisy position vs only at the masked ones.

    python benchmarks/training_projection.py [--preset bd3lm-110m] [--length 1024] [--rounds 3]

Same weights, batch and noise draw on both sides, interleaved A B A B (paired ratios), one torch
thread, fp32, CPU. A step is forward + NELBO + backward + AdamW. The loss reads only the masked
positions, so projecting the others to the vocabulary (50,258 ids for GPT-2) is wasted work:
``DiffusionForward(..., where=masked)`` runs the output layer only there. Writes
benchmarks/results/training-projection.md with the machine and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from backbone_cpu import cpu_model  # the benchmarks' shared machine line

from dind.models import build
from dind.schedules import LogLinearSchedule
from dind.training import DiffusionForward, Objective, nelbo_from_logits
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS

RESULTS = Path(__file__).resolve().parent / "results" / "training-projection.md"


def _step(model, forward, optimizer, draw, sizes, masked_only: bool) -> float:
    begin = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    where = draw.masked if masked_only else None
    logits = forward(draw.noisy, draw.clean, sizes, where)
    result = nelbo_from_logits(
        logits, draw.clean, draw.masked, draw.t_positions, sizes, schedule=LogLinearSchedule(),
        mask_id=model.mask_id,
    )  # fmt: skip
    result.loss.backward()
    optimizer.step()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bd3lm-110m")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    model = build(args.preset, init="random", dropout=0.0, generator=generator).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    clean = torch.randint(0, model.mask_id, (1, args.length), generator=generator)
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=args.block_size))
    draw = objective.draw(
        clean, mask_id=model.mask_id, low=0.0, high=1.0, generator=generator, block_sizes=args.block_size
    )
    sizes = torch.full((1,), args.block_size)
    forward = DiffusionForward(model)
    load_before = os.getloadavg()
    _step(model, forward, optimizer, draw, sizes, True)  # warm-up (allocator, masks)
    times: dict[str, list[float]] = {"all positions": [], "masked only": []}
    for _ in range(args.rounds):
        times["all positions"].append(_step(model, forward, optimizer, draw, sizes, False))
        times["masked only"].append(_step(model, forward, optimizer, draw, sizes, True))
    load_after = os.getloadavg()
    ratios = [a / m for a, m in zip(times["all positions"], times["masked only"], strict=True)]
    masked = int(draw.masked.sum())
    lines = [
        "# Training step: output layer at every noisy position vs only the masked ones",
        "",
        f"`python benchmarks/training_projection.py --preset {args.preset} --length {args.length} "
        f"--rounds {args.rounds}`: {args.preset} (vocab {model.vocab_size}), batch 1, L = {args.length}, "
        f"block {args.block_size}, {masked} of {args.length} positions masked, fp32, 1 thread, AdamW; "
        "interleaved A B A B, one warm-up step.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after.",
        "",
        "| output layer at | median step (s) | steps (s) |",
        "| --- | --- | --- |",
        *(
            f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |"
            for name, values in times.items()
        ),
        "",
        f"Paired speed-up (all / masked only): median {statistics.median(ratios):.2f}x, range "
        f"{min(ratios):.2f}-{max(ratios):.2f}x. Loss and gradients agree to fp32 round-off "
        "(tests/training/test_loss.py).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
