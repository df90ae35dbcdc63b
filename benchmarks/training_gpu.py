"""GPU training speed and memory: the 110M BD3-LM DiT at L = 1024 under bf16 autocast.

Times full optimizer steps (noise draw, forward over [x_t ; x_0], NELBO, backward, clip, AdamW,
EMA) on synthetic tokens for several objectives, and records tokens/s and peak memory. A config
that runs out of memory is retried with half the micro-batch; any other failure is recorded and
the next config runs.

    python benchmarks/training_gpu.py --out benchmarks/results                       # H100 defaults
    python benchmarks/training_gpu.py --backends sdpa,flash --activation-checkpointing both
    python benchmarks/training_gpu.py --device cpu --preset micro --length 64 --micro-batch 4 --steps 2
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import traceback
from pathlib import Path

import torch

from dind import models
from dind.training import DiffusionForward, ExponentialMovingAverage, Objective, build_adamw
from dind.training.activation_checkpointing import enable_activation_checkpointing
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS


def objectives(length: int) -> dict[str, Objective]:
    build = BLOCK_SIZE_DISTRIBUTIONS.build
    return {
        "bimodal(4,L,0.1)/sample": Objective(block_sizes=build("bimodal", draft=4, global_size=length)),
        "fixed 4": Objective(block_sizes=build("fixed", size=4)),
        "fixed L (global)": Objective(block_sizes=build("fixed", size=length)),
    }


def run_config(args, objective: Objective, backend: str, checkpointing: bool, micro_batch: int) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = models.build(args.preset, model_length=args.length, device=device)
    model.set_attention_backend(backend)
    model.train()
    if checkpointing:
        enable_activation_checkpointing(model)
    forward = DiffusionForward(model)
    optimizer = build_adamw(forward.named_parameters())
    ema = ExponentialMovingAverage(forward, decay=0.9999)
    generator = torch.Generator().manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        clean = torch.randint(0, model.mask_id, (micro_batch, args.length), generator=generator)
        draw = objective.draw(clean, mask_id=model.mask_id, low=1e-3, high=1.0, generator=generator)
        draw = draw.to(device)
        with autocast:
            result = objective.loss(forward, draw, mask_id=model.mask_id)
        result.loss.backward()
        torch.nn.utils.clip_grad_norm_(forward.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(forward)
        return float(result.nll)  # one sync per step, as the trainer's logging does

    for _ in range(args.warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    synchronize(device)
    seconds = (time.perf_counter() - started) / args.steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    return {
        "micro_batch": micro_batch,
        "step_s": seconds,
        "tokens_per_s": micro_batch * args.length / seconds,
        "peak_memory_gib": peak,
        "final_loss": losses[-1],
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def with_oom_retry(args, objective, backend, checkpointing) -> dict:
    micro_batch = args.micro_batch
    while micro_batch >= 1:
        try:
            return run_config(args, objective, backend, checkpointing, micro_batch)
        except torch.OutOfMemoryError:
            micro_batch //= 2
            torch.cuda.empty_cache()
    return {"error": "out of memory at micro-batch 1"}


def device_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(
            name=properties.name,
            memory_gib=properties.total_memory / 2**30,
            cuda=torch.version.cuda,
            capability=f"{properties.major}.{properties.minor}",
        )
    return info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="bd3lm-110m")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument(
        "--backends", default="sdpa", help="comma-separated attention backends (sdpa, flex, flash, eager)"
    )
    parser.add_argument("--activation-checkpointing", choices=["off", "on", "both"], default="off")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    checkpointing = {"off": [False], "on": [True], "both": [False, True]}[args.activation_checkpointing]
    rows = []
    for backend in args.backends.split(","):
        for name, objective in objectives(args.length).items():
            for ckpt in checkpointing:
                label = {"objective": name, "backend": backend, "activation_checkpointing": ckpt}
                try:
                    row = {**label, **with_oom_retry(args, objective, backend, ckpt)}
                except Exception as error:  # keep going: record it and try the next config
                    row = {
                        **label,
                        "error": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc(limit=3),
                    }
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)
    write({"device": device_info(device), "settings": vars(args), "results": rows}, Path(args.out))


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tag = results["device"].get("name", results["device"]["device"]).replace(" ", "-").lower()
    (out / f"training-gpu-{tag}.json").write_text(json.dumps(results, indent=2))
    s, d = results["settings"], results["device"]
    lines = [
        f"# Training speed: {s['preset']}, L = {s['length']}, {s['precision']}, "
        f"on {d.get('name', d['device'])}",
        "",
        f"torch {d['torch']}; {s['steps']} timed steps after {s['warmup']} warm-up; synthetic tokens; "
        "AdamW + grad clip + EMA included.",
        "",
        "| objective | backend | act. ckpt | micro-batch | tokens/s | step s | peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["results"]:
        if "error" in r:
            lines.append(
                f"| {r['objective']} | {r['backend']} | {r['activation_checkpointing']} | "
                f"error: {r['error'][:80]} | | | |"
            )
            continue
        lines.append(
            f"| {r['objective']} | {r['backend']} | {r['activation_checkpointing']} | {r['micro_batch']} | "
            f"{r['tokens_per_s']:.0f} | {r['step_s']:.3f} | {r['peak_memory_gib']:.1f} |"
        )
    (out / f"training-gpu-{tag}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
