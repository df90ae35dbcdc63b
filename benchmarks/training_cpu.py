"""CPU training benchmarks for the `tiny` DiT.

speed: tokens/s under the default trainer, and the vectorised [x_t ; x_0] NELBO against the naive
       block-by-block loop it replaces -> results/training-cpu.{md,json}
curve: a short Shakespeare run from configs/tiny-shakespeare.yaml; the validation NELBO curve
       -> results/training-tiny-shakespeare.{png,md,json}

    python benchmarks/training_cpu.py speed
    python benchmarks/training_cpu.py speed --steps 3 --repeats 1 --out /tmp/bench      # quick
    python benchmarks/training_cpu.py curve --steps 300 eval_every=25                   # + config overrides
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dind import models
from dind.schedules import LogLinearSchedule
from dind.training import Objective, TrainConfig, apply_overrides, nelbo
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def trainer_tokens_per_second(mix: list[str], *, length: int, batch: int, steps: int, cache: str) -> float:
    config = TrainConfig.from_dict(
        apply_overrides(
            TrainConfig.from_file(ROOT / "configs" / "tiny-shakespeare.yaml").to_dict(),
            [
                f"data.length={length}",
                f"model.options.model_length={length}",
                f"batch_size={batch}",
                f"data.corpus_options.paths=[{ROOT / 'data' / 'shakespeare'}]",
                f"data.cache_dir={cache}",
                f"out_dir={cache}/run",
                "progress=false",
                *mix,
            ],
        )
    )
    trainer = config.build()
    trainer.train_step()  # warm-up (allocator, first-call overheads)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * batch * length / (time.perf_counter() - started)


def naive_loss(model, draw, schedule):
    total = 0.0
    for row in range(len(draw.clean)):
        size = int(draw.block_sizes[row])
        for start in range(0, draw.clean.shape[1], size):
            end = start + size
            tokens = torch.cat([draw.clean[row, :start], draw.noisy[row, start:end]])[None]
            logits = model.logits(tokens, block_size=size)[0, start:end]
            logits[:, model.mask_id] = float("-inf")
            ce = torch.nn.functional.cross_entropy(logits, draw.clean[row, start:end], reduction="none")
            total = (
                total
                + (schedule.weight(draw.t_positions[row, start:end]) * ce * draw.masked[row, start:end]).sum()
            )
    return total / draw.clean.numel()


def loss_speed(block_size: int, *, length: int, batch: int, repeats: int, backward: bool) -> dict:
    torch.manual_seed(0)
    model = models.build("tiny", init="random", model_length=length, dropout=0.0)
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=block_size))
    clean = torch.randint(0, 256, (batch, length))
    draw = objective.draw(
        clean,
        mask_id=model.mask_id,
        low=1e-3,
        high=1.0,
        block_sizes=block_size,
        generator=torch.Generator().manual_seed(0),
    )
    schedule = LogLinearSchedule()

    def vectorised():
        return nelbo(model, draw.clean, draw.noisy, draw.masked, draw.t_positions, block_size, schedule).loss

    timings = {}
    for name, function in (("vectorised", vectorised), ("naive", lambda: naive_loss(model, draw, schedule))):
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            with torch.set_grad_enabled(backward):
                loss = function()
                if backward:
                    loss.backward()
            samples.append(time.perf_counter() - started)
            model.zero_grad(set_to_none=True)
        timings[name] = statistics.median(samples)
    return {
        "block_size": block_size,
        "backward": backward,
        "vectorised_s": timings["vectorised"],
        "naive_s": timings["naive"],
        "speedup": timings["naive"] / timings["vectorised"],
    }


def speed(args: argparse.Namespace) -> None:
    settings = {key: value for key, value in vars(args).items() if not callable(value)}  # drop the handler
    results = {"machine": machine(), "settings": settings, "training": [], "loss": []}
    mixes = (
        ("bimodal(4, L, 0.1) per sample", []),
        ("fixed 4", ["objective.block_sizes=fixed", "objective.block_size_options={size: 4}"]),
        (
            "fixed L (global shortcut)",
            ["objective.block_sizes=fixed", f"objective.block_size_options={{size: {args.length}}}"],
        ),
    )
    with tempfile.TemporaryDirectory() as cache:
        for label, mix in mixes:
            rate = trainer_tokens_per_second(
                mix, length=args.length, batch=args.batch, steps=args.steps, cache=cache
            )
            results["training"].append({"objective": label, "tokens_per_s": rate})
            print(f"train {label}: {rate:.0f} tokens/s", flush=True)
    for block_size in (4, 16, 64):
        for backward in (False, True):
            row = loss_speed(block_size, length=args.length, batch=4, repeats=args.repeats, backward=backward)
            results["loss"].append(row)
            print(row, flush=True)
    write(results, Path(args.out))


def curve(args: argparse.Namespace) -> None:
    out_dir = Path(args.run_dir)
    config = TrainConfig.from_dict(
        apply_overrides(
            TrainConfig.from_file(ROOT / "configs" / "tiny-shakespeare.yaml").to_dict(),
            [
                f"steps={args.steps}",
                f"data.corpus_options.paths=[{ROOT / 'data' / 'shakespeare'}]",
                f"out_dir={out_dir}",
                *args.overrides,
            ],
        )
    )
    config.build().fit()
    from demo_curve import render  # benchmarks/ is on sys.path when run as a script

    render([out_dir], Path(args.out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.set_defaults(func=speed)
    p = sub.add_parser("curve")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "tiny-shakespeare-curve"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.set_defaults(func=curve)
    args = parser.parse_args()
    args.func(args)


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "training-cpu.json").write_text(json.dumps(results, indent=2))
    m, s = results["machine"], results["settings"]
    lines = [
        "# Training speed on CPU (tiny DiT, fp32)",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"load average at start {m['load_average']}. Shared machine: expect noise of tens of percent.",
        "",
        f"## Trainer throughput (length {s['length']}, batch {s['batch']}, {s['steps']} timed steps)",
        "",
        "| objective | tokens/s |",
        "|---|---|",
    ]
    lines += [f"| {r['objective']} | {r['tokens_per_s']:.0f} |" for r in results["training"]]
    lines += [
        "",
        f"## Vectorised NELBO vs naive block loop (length {s['length']}, batch 4, median of {s['repeats']})",
        "",
        "| block size | pass | vectorised s | naive s | speed-up |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['block_size']} | {'forward+backward' if r['backward'] else 'forward'} | "
        f"{r['vectorised_s']:.3f} | {r['naive_s']:.3f} | {r['speedup']:.1f}x |"
        for r in results["loss"]
    ]
    (out / "training-cpu.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
