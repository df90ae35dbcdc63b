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


def step_flops(config, batch: int, length: int) -> float:
    """FLOPs one training step executes, forward + backward (= 3 x forward): the blocks' matmuls
    over the 2L positions of [x_t ; x_0], the output layer over the noisy L, and attention over the
    2L keys computed densely (the sdpa backend scores every pair and masks). adaLN/embedding: ~0."""
    hidden, positions = config.hidden_dim, batch * 2 * length
    block_params = 12 * hidden * hidden + 2 * 4 * hidden  # qkv 3h^2, out h^2, MLP 8h^2 (+ biases)
    forward = 2 * config.n_blocks * block_params * positions
    forward += 2 * hidden * config.vocab_size * batch * length
    forward += config.n_blocks * 2 * 2 * batch * (2 * length) ** 2 * hidden  # QK^T and PV
    return 3.0 * forward


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 FLOP/s of a large square matmul with torch's current threads: the compute
    roof the training step is compared with."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    return 2 * size**3 / _median_time(lambda: a @ b, repeats)


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
        f"torch {m['torch']}, Python {m['python']}. {_machine_state(report, m['cpu_count'])}",
        "",
        f"Batch {report['batch']} x {report['length']} tokens, block sizes `{report['block_sizes']}` "
        f"drawn per row, {report['steps']} timed steps after {report['warmup']} warm-up (compilation "
        "is in the warm-up).",
    ]
    roof = report.get("matmul_gflop_s")
    if roof:
        lines += [
            "",
            f"Compute roof: a 2048^3 fp32 matmul measured {roof:.0f} GFLOP/s with the same threads; one "
            f"step executes {report['step_gflop']:.0f} GFLOP (matmuls over [x_t ; x_0], dense masked "
            "attention, forward + backward = 3 x forward): the last column is the step's FLOP rate "
            "over that roof.",
        ]
    lines += [
        "",
        "| variant | compiled | AdamW | mask cache | median step s | tokens/s | vs eager for_loop "
        "| warm-up s | % of matmul roof |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["tokens_per_s"] / base["tokens_per_s"]
        share = f"{100 * report['step_gflop'] / r['step_s'] / roof:.0f}%" if roof else "-"
        lines.append(
            f"| {r['variant']} | {r['compiled']} | {r['optimizer']} | {r['mask_cache']} | "
            f"{r['step_s']:.3f} | {r['tokens_per_s']:.0f} | {ratio:.2f}x | {r['warmup_s']:.1f} | {share} |"
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


def _machine_state(report: dict, cores: int) -> str:
    """Whether other jobs shared the cores (1-minute load average before the run above half the
    core count), in words: it decides whether the absolute figures can be quoted."""
    before, after = report["load_before"], report["load_after"]
    loads = f"load average {_load(before)} before, {_load(after)} after"
    if not before or before[0] > cores / 2:
        return (
            f"**Shared and loaded**: {loads} (other jobs used the same cores), so absolute figures are "
            "low and noisy; ratios within one run are the useful part."
        )
    return f"Nearly idle: {loads} (the run's own threads included after)."


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
    report["matmul_gflop_s"] = matmul_rate() / 1e9
    config = models.build("tiny", device="meta").config
    report["step_gflop"] = step_flops(config, args.batch, args.length) / 1e9
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
