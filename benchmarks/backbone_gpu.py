"""GPU speed and memory of the bd3lm-110m backbone per attention backend (bf16 autocast).

For each backend: forward+backward tokens/s and peak memory with the vectorised training input
(concat(x_t, x_0), length 2L, block-diffusion mask, block size 4) and with the plain length-L forward
(the global-block shortcut), plus the inference cost of one cached block-4 forward at the end of a
sequence against a full forward. Tokens/s counts the L positions that get a loss, per row. Every
measurement runs in its own try/except: a failure (e.g. flash-attn missing, or flash on a masked
input) is reported in the table instead of stopping the run.

    python benchmarks/backbone_gpu.py --out benchmarks/results/backbone-gpu [--batch 16] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from dind.attention import ATTENTION_BACKENDS
from dind.models import build

VARIANTS = {  # label -> (registry name, backend options, torch.compile the model's forward methods)
    "sdpa": ("sdpa", {}, False),
    "flex (compiled)": ("flex", {"compile": True}, False),
    "flash": ("flash", {}, False),
    "sdpa + compiled model": ("sdpa", {}, True),
}


def synchronized_time(function, steps: int, warmup: int) -> float:
    """Median seconds per call, CUDA-synchronised."""
    for _ in range(warmup):
        function()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train_step(model, mode: str, noisy, clean, block_size: int, compile_model: bool):
    training_logits, logits_of = model.training_logits, model.logits
    if compile_model:
        training_logits, logits_of = torch.compile(training_logits), torch.compile(logits_of)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if mode == "training (2L)":
                logits = training_logits(noisy, clean, block_size)
            else:
                logits = logits_of(noisy, block_size=None)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), clean.view(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def cached_step(model, tokens, block: int):
    length = tokens.shape[1]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        cache = model.new_cache(tokens.shape[0], length)
        model.append_to_cache(tokens[:, : length - block], cache=cache, start=0)

    def step():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            model.cached_logits(tokens[:, length - block :], cache=cache, start=length - block)

    return step


def full_forward(model, tokens, compile_model: bool):
    logits_of = torch.compile(model.logits) if compile_model else model.logits

    def step():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            logits_of(tokens, block_size=None)

    return step


def run_case(label, function, steps, warmup, tokens_per_call) -> dict:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        seconds = synchronized_time(function, steps, warmup)
    except Exception as error:  # report and go on: one backend's failure must not hide the others
        print(f"  {label}: FAILED {type(error).__name__}: {str(error).splitlines()[0][:200]}", flush=True)
        return {
            "case": label,
            "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}",
            "trace": traceback.format_exc(limit=3),
        }
    peak = torch.cuda.max_memory_allocated() / 2**30
    row = {
        "case": label,
        "seconds": seconds,
        "tokens_per_s": tokens_per_call / seconds,
        "peak_memory_gib": peak,
    }
    print(
        f"  {label}: {seconds * 1e3:8.2f} ms, {row['tokens_per_s']:10.0f} tok/s, peak {peak:6.2f} GiB",
        flush=True,
    )
    return row


def benchmark(args) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    model = build(args.preset, init="random", generator=generator, device="cuda")
    length = model.config.model_length
    clean = torch.randint(0, model.vocab_size - 1, (args.batch, length), generator=generator).cuda()
    noisy = torch.where(torch.rand(clean.shape, generator=generator).cuda() < 0.5, model.mask_id, clean)
    one_row = clean[: args.sample_batch]
    rows = []
    for label, (name, options, compile_model) in VARIANTS.items():
        model.set_attention_backend(ATTENTION_BACKENDS.build(name, **options))
        print(f"{label}:", flush=True)
        model.train()
        for mode in ("training (2L)", "plain forward (L)"):
            step = train_step(model, mode, noisy, clean, args.block_size, compile_model)
            row = run_case(f"{mode} fwd+bwd", step, args.steps, args.warmup, args.batch * length)
            rows.append({"backend": label, "mode": mode, **row})
        model.eval()
        cases = [
            (
                "inference full forward (L)",
                lambda compile_model=compile_model: full_forward(model, one_row, compile_model),
                length,
            )
        ]
        if not compile_model:  # the cached forward's key length grows block by block: not a static graph
            block = args.sample_block
            cases.append(
                (
                    f"inference cached block {block}",
                    lambda block=block: cached_step(model, one_row, block),
                    block,
                )
            )
        for mode, make_step, tokens in cases:
            try:
                function = make_step()
            except Exception as error:
                rows.append({"backend": label, "mode": mode, "error": f"{type(error).__name__}: {error}"})
                continue
            row = run_case(mode, function, args.steps, args.warmup, args.sample_batch * tokens)
            rows.append({"backend": label, "mode": mode, **row})
    return rows


def markdown(machine: dict, args, rows: list[dict]) -> str:
    lines = [
        "# Backbone GPU benchmark",
        "",
        f"Device: {machine['device']}; torch {machine['torch']}, CUDA {machine['cuda']}; flash-attn "
        f"{machine['flash_attn']}. Preset {args.preset}, bf16 autocast, training batch {args.batch} x L = "
        f"{machine['length']} (block size {args.block_size} in the 2L training input), inference batch "
        f"{args.sample_batch}; median of {args.steps} steps after {args.warmup} warm-up steps. "
        "Tokens/s counts the L loss positions per row (the 2L input costs more per such token).",
        "",
        "| backend | mode | ms / step | tokens/s | peak memory (GiB) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['backend']} | {row['mode']} | failed: {row['error'][:120]} | | |")
        else:
            lines.append(
                f"| {row['backend']} | {row['mode']} | {row['seconds'] * 1e3:.2f} | "
                f"{row['tokens_per_s']:.0f} | {row['peak_memory_gib']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/backbone-gpu", help="output path without suffix")
    parser.add_argument("--preset", default="bd3lm-110m")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--sample-batch", type=int, default=1)
    parser.add_argument("--sample-block", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("backbone_gpu.py needs a CUDA device")
    try:
        import flash_attn

        flash_version = flash_attn.__version__
    except ImportError:
        flash_version = "not installed"
    torch.backends.cuda.matmul.allow_tf32 = True
    rows = benchmark(args)
    machine = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "flash_attn": flash_version,
        "python": platform.python_version(),
        "length": build(args.preset, device="meta").config.model_length,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "args": vars(args), "results": rows}, indent=2) + "\n"
    )
    text = markdown(machine, args, rows)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
