"""Training-step throughput of the `tiny` DiT on this CPU: eager vs compiled, AdamW fused vs foreach
vs for_loop, the training-mask cache on vs off.

One step = the trainer's work: draw the noise (Objective.draw), the [x_t ; x_0] forward through
DiffusionForward, the NELBO, backward, gradient clipping, AdamW. Synthetic byte tokens, batch
8 x 256 by default. tokens/s = batch * length / median step time.

    python benchmarks/training_throughput.py                       # -> results/training-throughput-cpu.md
    python benchmarks/training_throughput.py --steps 2 --warmup 1 --variants eager-fused --out /tmp/t.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_cpu import machine  # noqa: E402

from dind import models  # noqa: E402
from dind.training import Objective, build_adamw  # noqa: E402
from dind.training.block_sizes import parse_block_sizes  # noqa: E402
from dind.training.compile import compile_model  # noqa: E402
from dind.training.loss import DiffusionForward  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# name: (compiled, optimizer implementation, mask cache)
VARIANTS = {
    "eager-for_loop": (False, "for_loop", True),
    "eager-foreach": (False, "foreach", True),
    "eager-fused": (False, "fused", True),
    "eager-fused-nocache": (False, "fused", False),
    "compiled-fused": (True, "fused", True),
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    compiled, implementation, cache = VARIANTS[name]
    torch.manual_seed(0)
    model = models.build("tiny", init="random", dropout=0.0).train()
    if compiled:
        compile_model(model)
    forward = DiffusionForward(model, cache_masks=cache)
    optimizer = build_adamw(model.named_parameters(), lr=1e-4, implementation=implementation)
    objective = Objective(parse_block_sizes(args.block_sizes), block_size_draw="sample")
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, model.mask_id, (args.batch, args.length), generator=generator)

    def step() -> float:
        started = time.perf_counter()
        draw = objective.draw(clean, mask_id=model.mask_id, low=1e-3, high=1.0, generator=generator)
        result = objective.loss(forward, draw, mask_id=model.mask_id)
        result.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    warm_started = time.perf_counter()
    for _ in range(args.warmup):
        step()
    warmup_s = time.perf_counter() - warm_started
    times = [step() for _ in range(args.steps)]
    median = statistics.median(times)
    return {
        "variant": name, "compiled": compiled, "optimizer": implementation, "mask_cache": cache,
        "step_s": median, "step_s_min": min(times), "tokens_per_s": args.batch * args.length / median,
        "warmup_s": warmup_s, "load_average_after": os.getloadavg(),
    }  # fmt: skip


def components(args: argparse.Namespace) -> dict:
    """The two parts these options change, timed alone (less exposed to the machine's load than a
    whole step): one AdamW step over the tiny model's parameters per implementation, and the
    training mask of one batch (dense form, what sdpa uses) built fresh vs taken from the cache."""
    from dind.attention import training_mask
    from dind.attention.mask_cache import TrainingMaskCache

    model = models.build("tiny", init="random")
    optimizer_ms = {}
    for implementation in ("for_loop", "foreach", "fused"):
        params = [p.detach().clone().requires_grad_() for p in model.parameters()]
        optimizer = build_adamw([(str(i), p) for i, p in enumerate(params)], implementation=implementation)
        for p in params:
            p.grad = torch.randn_like(p) * 1e-2
        optimizer.step()
        optimizer_ms[implementation] = 1e3 * _median_time(optimizer.step, 10)
    sizes = parse_block_sizes(args.block_sizes).sample(args.batch, generator=torch.Generator().manual_seed(0))
    cache = TrainingMaskCache()
    cache.get(args.length, sizes).dense()
    mask_ms = {
        "fresh": 1e3 * _median_time(lambda: training_mask(args.length, sizes).dense(), 10),
        "cached": 1e3 * _median_time(lambda: cache.get(args.length, sizes).dense(), 10),
    }
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "adamw_step_ms": optimizer_ms,
        "mask_ms": mask_ms,
    }


def _median_time(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_markdown(report: dict, path: Path) -> None:
    m, rows = report["machine"], report["results"]
    base = next((r for r in rows if r["variant"] == "eager-for_loop"), rows[0])
    command = " ".join(["python benchmarks/training_throughput.py", *report["argv"]])
    lines = [
        "# Training-step throughput, `tiny` DiT, CPU",
        "",
        f"`{command}`",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, {m['torch_threads']} torch threads, "
        f"torch {m['torch']}, Python {m['python']}. **Shared and loaded**: load average "
        f"{_load(report['load_before'])} before, {_load(report['load_after'])} after (other jobs, a "
        "training run among them, used the same 2 cores), so absolute figures are low and noisy; "
        "ratios within one run are the useful part.",
        "",
        f"Batch {report['batch']} x {report['length']} tokens, block sizes `{report['block_sizes']}` "
        f"drawn per row, {report['steps']} timed steps after {report['warmup']} warm-up (compilation "
        "is in the warm-up).",
        "",
        "| variant | compiled | AdamW | mask cache | median step s | tokens/s | vs eager for_loop "
        "| warm-up s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["tokens_per_s"] / base["tokens_per_s"]
        lines.append(
            f"| {r['variant']} | {r['compiled']} | {r['optimizer']} | {r['mask_cache']} | "
            f"{r['step_s']:.3f} | {r['tokens_per_s']:.0f} | {ratio:.2f}x | {r['warmup_s']:.1f} |"
        )
    parts = report.get("components")
    if parts:
        adamw = ", ".join(f"{name} {ms:.0f} ms" for name, ms in parts["adamw_step_ms"].items())
        masks = parts["mask_ms"]
        lines += [
            "",
            f"Parts alone (median of 10): one AdamW step over the {parts['parameters'] / 1e6:.1f}M "
            f"parameters: "
            f"{adamw}. The batch's training mask (dense, {report['batch']} x 1 x {2 * report['length']}^2): "
            f"{masks['fresh']:.2f} ms built fresh, {masks['cached']:.2f} ms from the cache.",
        ]
    lines += ["", *report.get("notes", []), ""]
    path.write_text("\n".join(lines))


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--block-sizes", default="fixed:4")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS / "training-throughput-cpu.md")
    args = parser.parse_args()
    report = {
        "argv": sys.argv[1:], "machine": machine(), "load_before": os.getloadavg(), "batch": args.batch,
        "length": args.length, "block_sizes": args.block_sizes, "steps": args.steps, "warmup": args.warmup,
        "results": [],
    }  # fmt: skip
    report["components"] = components(args)
    print(json.dumps(report["components"]), flush=True)
    for name in args.variants.split(","):
        report["results"].append(run_variant(name, args))
        print(json.dumps(report["results"][-1]), flush=True)
    report["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(report, args.out)
    print(args.out.read_text())
    assert all(math.isfinite(r["tokens_per_s"]) for r in report["results"])


if __name__ == "__main__":
    main()
