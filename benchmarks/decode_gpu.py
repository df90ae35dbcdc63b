"""GPU benchmark for issue 12 (prepared, not yet run: no device was lent when it was written).

One run, well under 10 minutes on an H100/H200:
1. the 110M BD3-LM DiT's cached block-4 step at batch 1 (cache length 1024, half filled, bf16
   autocast): dynamic (today's), static-shape eager, static-shape compiled with CUDA graphs
   (``torch.compile(mode="reduce-overhead")``), against the memory bound (weights + cache bytes
   over the measured copy bandwidth). Target: < 3 ms.
2. samples of the compiled step equal the dynamic step's for the same seeds (short plan);
3. training tokens/s of the 110M model at L = 1024 (bf16 autocast, fused AdamW, block size 4,
   synthetic tokens; eager, then ``compile=true``'s compiled blocks) against the bf16 dense
   peak (``--peak-tflops``, default 989 = H100/H200 SXM).
   Target: >= 35% of peak. (benchmarks/training_gpu.py is the fuller training benchmark.)

    python benchmarks/decode_gpu.py                 # writes benchmarks/results/decode-gpu.{json,md}
    python benchmarks/decode_gpu.py --skip-training
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dind import models
from dind.models import CompiledStep, StaticStep
from dind.sampling import GenerateOptions, StagePlan, generate

RESULTS = Path(__file__).parent / "results"


def cuda_time(call, repeats: int, warmup: int = 3) -> float:
    """Median seconds per call, synchronised."""
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - begin)
    times.sort()
    return times[len(times) // 2]


def bandwidth() -> float:
    src = torch.ones(2**28, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / cuda_time(lambda: dst.copy_(src), repeats=10)


def decode_step(model, *, length: int, start: int, width: int) -> dict:
    tokens = torch.randint(0, 50000, (1, length), device="cuda", generator=None)
    block = tokens[:, start : start + width].clone()
    block[:, ::2] = model.mask_id
    out = {}
    for name, stepper in (("dynamic", model), ("static", StaticStep().bind(model)),
                          ("compiled", CompiledStep().bind(model))):  # fmt: skip
        with torch.autocast("cuda", dtype=torch.bfloat16):
            cache = stepper.new_cache(1, length)
            for s in range(0, start, width):
                stepper.append_to_cache(tokens[:, s : s + width], cache=cache, start=s)
            begin = time.perf_counter()
            stepper.cached_logits(block, cache=cache, start=start)
            torch.cuda.synchronize()
            first = time.perf_counter() - begin

            def call(stepper=stepper, cache=cache):
                return stepper.cached_logits(block, cache=cache, start=start)

            out[name] = {"step_ms": 1e3 * cuda_time(call, repeats=100), "first_call_s": first}
        print(name, out[name], flush=True)
    return out


def same_samples(model) -> bool:
    kwargs = dict(length=256, batch_size=2, seed=0)
    options = GenerateOptions(bos_id=50256)
    plan = StagePlan.parse("4 -> 256@0.25/8{unmasking=confidence_topk}")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        dynamic = generate(model, plan, **kwargs, options=options)
        compiled = generate(model, plan, **kwargs, options=options.evolve(step=CompiledStep()))
    return bool(torch.equal(dynamic.tokens, compiled.tokens))


def training(
    model, *, length: int, micro_batch: int, steps: int, peak_tflops: float, compiled: bool = False
) -> dict:
    """The trainer's forward (DiffusionForward: training masks cached per block size), fused AdamW;
    ``compiled``: dind.training.compile.compile_model first (compile=true in a TrainConfig)."""
    from dind.training.compile import compile_model
    from dind.training.loss import DiffusionForward

    model.train()
    if compiled:
        compile_model(model)
    forward = DiffusionForward(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    clean = torch.randint(0, model.mask_id, (micro_batch, length), device="cuda")
    noisy = torch.where(torch.rand(clean.shape, device="cuda") < 0.5, model.mask_id, clean)
    sizes = torch.full((micro_batch,), 4)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = forward(noisy, clean, sizes)
            loss = F.cross_entropy(logits[noisy == model.mask_id], clean[noisy == model.mask_id])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = cuda_time(step, repeats=steps, warmup=5 if compiled else 3)  # compiling is in the warm-up
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    config = model.config
    tokens = micro_batch * length
    # forward over [x_t ; x_0] (2L positions) + backward: 6 * params * 2L, plus dense attention
    flops = (
        6 * params * 2 * tokens
        + 3 * 4 * config.n_blocks * micro_batch * (2 * length) ** 2 * config.hidden_dim
    )
    return {
        "micro_batch": micro_batch, "length": length, "step_s": seconds, "tokens_per_s": tokens / seconds,
        "tflops": flops / seconds / 1e12, "share_of_bf16_peak": flops / seconds / 1e12 / peak_tflops,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bd3lm-110m")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    model = models.build(args.preset, init="random", dropout=0.0, device="cuda").eval()
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "preset": args.preset}
    report["bandwidth_gb_s"] = bandwidth() / 1e9
    report["decode"] = decode_step(model, length=1024, start=512, width=4)
    weight_bytes = sum(p.numel() * 2 for p in model.parameters())  # bf16 under autocast
    cache_bytes = 2 * model.config.n_blocks * model.config.hidden_dim * 516 * 2
    report["memory_bound_ms"] = 1e3 * (weight_bytes + cache_bytes) / (report["bandwidth_gb_s"] * 1e9)
    report["compiled_equals_dynamic_samples"] = same_samples(model)
    if not args.skip_training:
        report["training"] = training(
            model, length=1024, micro_batch=args.micro_batch, steps=10, peak_tflops=args.peak_tflops
        )
        report["training_compiled"] = training(  # last: compile_model changes the model in place
            model, length=1024, micro_batch=args.micro_batch, steps=10, peak_tflops=args.peak_tflops,
            compiled=True,
        )  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "decode-gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# GPU decode/training: {report['device']}", "", "```", json.dumps(report, indent=2), "```", ""]
    (args.out_dir / "decode-gpu.md").write_text("\n".join(lines))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
