"""CPU decode benchmark (issue 12 part 4, sampler side), in one run:

1. the `tiny` DiT's cached block-4 step at batch 1 (cache length 1024, half filled): dynamic
   (the reference path), static (folded weights, eager) and compiled (folded weights, inductor
   with frozen weights and max-autotune GEMMs), against its memory bound (the model's weight bytes
   + the cache bytes the step reads, over the bandwidth of a large tensor copy measured here), the
   stricter bound of the bytes the folded step reads (no adaLN/timestep weights), and its FLOP
   bound (2 * matmul parameters * width + attention, over a large fp32 matmul's measured rate);
2. sampler tokens/s at batch 1, 16, 64 (stage-1 plan "4", first-hitting) per step mode (compiled:
   after a warm-up generation of the same shape, whose compile time is reported apart);
3. the stage-2 rule/steps trade-off on the shipped trained `tiny-shakespeare` model: first-hitting
   vs /16 and /32 confidence_topk and /32 ancestral (NFE, seconds, Gen PPL under the shipped
   byte judge `judge-shakespeare`).

BD3-LM's reference sampler is not in this repository (nothing to run side by side): not measured.

Usage: python benchmarks/decode_cpu.py [--quick] [--threads N] [--step-only] [--no-compile]
Writes benchmarks/results/decode-cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from dind import models
from dind.models import DECODE_STEPS, CompiledStep, StaticStep
from dind.sampling import GenerateOptions, StagePlan, generate

HERE = Path(__file__).parent
RESULTS = HERE / "results"
ASSETS = HERE.parent / "src" / "dind" / "assets"


def machine_info() -> dict:
    from sampling_cpu import machine_info as info  # benchmarks/ is on sys.path when run as a script

    return info()


def best_time(call, *, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` (median: the machine is shared)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    times.sort()
    return times[len(times) // 2]


def memory_bandwidth(megabytes: int = 256) -> float:
    """Bytes/s of a large tensor copy (read + write counted)."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    seconds = best_time(lambda: dst.copy_(src), repeats=7)
    return 2 * src.numel() * 4 / seconds


def matmul_flops(size: int = 1024) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = best_time(lambda: a @ b, repeats=7)
    return 2 * size**3 / seconds


def step_bounds(model, width: int, keys: int, bandwidth: float, flops: float) -> dict:
    """Memory and FLOP bounds of one cached step of ``width`` queries over ``keys`` cached keys."""
    config = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    folded_bytes = sum(  # what the folded step reads: no adaLN, no timestep MLP, no embedding table
        p.numel() * p.element_size()
        for n, p in model.named_parameters()
        if "adaLN" not in n and "sigma_map" not in n and "embedding" not in n
    )
    cache_bytes = 2 * config.n_blocks * config.hidden_dim * keys * 4  # keys + values, fp32, batch 1
    matmul_params = sum(
        p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embedding" not in n
    )
    step_flops = 2 * matmul_params * width + 4 * config.n_blocks * width * keys * config.hidden_dim
    return {
        "weight_bytes": weight_bytes,
        "cache_bytes_read": cache_bytes,
        "memory_bound_ms": 1e3 * (weight_bytes + cache_bytes) / bandwidth,
        "folded_weight_bytes": folded_bytes,
        "folded_memory_bound_ms": 1e3 * (folded_bytes + cache_bytes) / bandwidth,
        "flops": step_flops,
        "flop_bound_ms": 1e3 * step_flops / flops,
    }


def cached_step(
    model, *, length: int, width: int, start: int, repeats: int, rounds: int, compiled: bool, megabytes: int
) -> dict:
    """Each step mode's median step time, in ``rounds`` rounds that each measure the copy bandwidth
    first: on a shared machine the bandwidth drifts, so each round's ratio uses its own bandwidth."""
    tokens = torch.randint(0, 256, (1, length), generator=torch.Generator().manual_seed(0))
    block = tokens[:, start : start + width].clone()
    block[:, ::2] = model.mask_id
    steppers = {"dynamic": model, "static": StaticStep().bind(model)}
    if compiled:
        steppers["compiled"] = CompiledStep().bind(model)
    calls, first = {}, {}
    for name, stepper in steppers.items():
        cache = stepper.new_cache(1, length)
        begin = time.perf_counter()
        stepper.append_to_cache(tokens[:, :width], cache=cache, start=0)  # compiles for "compiled"
        first[name] = time.perf_counter() - begin
        for s in range(width, start, width):
            stepper.append_to_cache(tokens[:, s : s + width], cache=cache, start=s)
        calls[name] = lambda stepper=stepper, cache=cache: stepper.cached_logits(
            block, cache=cache, start=start
        )
    measured = []
    for _ in range(rounds):
        row = {"bandwidth_gb_s": memory_bandwidth(megabytes) / 1e9}
        for name, call in calls.items():  # warm-up: the mode's weights and cache back in the caches
            row[name] = 1e3 * best_time(call, repeats=repeats, warmup=10)
        measured.append(row)
        print(row, flush=True)
    timings = {
        name: {
            "step_ms": statistics.median(row[name] for row in measured),
            "first_call_s": first[name],
        }
        for name in calls
    }
    return {"timings": timings, "rounds": measured}


def sampler_throughput(model, *, length: int, batches: list[int], modes: list[str]) -> list[dict]:
    rows = []
    plan = StagePlan.parse("4")
    for mode in modes:
        options = GenerateOptions(bos_id=256, step=DECODE_STEPS.build(mode))  # one step object per mode

        def run(length: int, batch: int, seed: int, options=options):
            return generate(model, plan, length=length, batch_size=batch, seed=seed, options=options)

        run(32, 1, 0)  # warm-up
        for batch in batches:
            compile_s = None
            if mode == "compiled":  # graphs are per (batch, cache length): compile them first
                begin = time.perf_counter()
                run(length, batch, 1)
                compile_s = round(time.perf_counter() - begin, 1)
            begin = time.perf_counter()
            result = run(length, batch, 0)
            seconds = time.perf_counter() - begin
            generated = batch * (length - 1)
            rows.append({
                "step_mode": mode, "batch": batch, "length": length, "seconds": round(seconds, 3),
                "tokens_per_s": round(generated / seconds, 1),
                "nfe_per_row": int(result.trace[0].nfe[0]), "warmup_with_compile_s": compile_s,
            })  # fmt: skip
            print(rows[-1], flush=True)
    return rows


STAGE2 = {
    "first_hitting": "4 -> {L}@0.5",
    "confidence_topk /16": "4 -> {L}@0.5/16{{unmasking=confidence_topk}}",
    "confidence_topk /32": "4 -> {L}@0.5/32{{unmasking=confidence_topk}}",
    "ancestral /32": "4 -> {L}@0.5/32{{unmasking=ancestral}}",
}


def stage2_tradeoff(*, length: int, batch: int, step_mode: str) -> list[dict]:
    import dind
    from dind.eval.byte_judge import byte_judge_ids
    from dind.eval.judge import load_judge

    model = dind.load(str(ASSETS / "tiny-shakespeare"), device="cpu").float().eval()
    judge = load_judge(str(ASSETS / "judge-shakespeare"), device="cpu")
    rows = []
    step = DECODE_STEPS.build(step_mode)
    for name, text in STAGE2.items():
        plan = StagePlan.parse(text.format(L=length))
        begin = time.perf_counter()
        result = generate(
            model,
            plan,
            length=length,
            batch_size=batch,
            seed=0,
            options=GenerateOptions(bos_id=256, step=step),
        )
        seconds = time.perf_counter() - begin
        stage2 = result.trace[1]
        ids, entropy_ids = byte_judge_ids(result.tokens.tolist())
        report = judge.score_ids(ids, entropy_ids=entropy_ids)
        rows.append({
            "rule": name, "plan": str(plan), "stage2_nfe_per_row": float(stage2.nfe.double().mean()),
            "stage2_seconds": round(stage2.wall_time_s, 3), "total_seconds": round(seconds, 3),
            "gen_ppl": round(report.corpus_ppl, 3), "entropy": round(report.mean_unigram_entropy, 3),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--step-only", action="store_true", help="only the cached step (prints, writes nothing)"
    )
    parser.add_argument(
        "--stage2-only",
        action="store_true",
        help="re-measure only the stage-2 trade-off (the one section on the shipped trained model) and "
        "keep the other sections of the existing decode-cpu.json",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    machine = machine_info()
    if args.stage2_only:
        refresh_stage2(args.out_dir, machine, quick=quick)
        return
    bandwidth, flops = memory_bandwidth(64 if quick else 256), matmul_flops(512 if quick else 1024)
    print(f"bandwidth {bandwidth / 1e9:.2f} GB/s, matmul {flops / 1e9:.1f} GFLOP/s", flush=True)
    tiny = models.build("tiny", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)).eval()
    length, width, start = 1024, 4, 512
    measured = cached_step(tiny, length=length, width=width, start=start, repeats=20 if quick else 60,
                           rounds=2 if quick else 7, compiled=not args.no_compile,
                           megabytes=64 if quick else 256)  # fmt: skip
    steps, rounds = measured["timings"], measured["rounds"]
    bandwidth = statistics.median([bandwidth] + [row["bandwidth_gb_s"] * 1e9 for row in rounds])
    bounds = step_bounds(tiny, width, start + width, bandwidth, flops)
    print(steps, bounds, flush=True)
    if args.step_only:
        return
    modes = ["dynamic", "static"] + ([] if args.no_compile else ["compiled"])
    throughput = sampler_throughput(tiny, length=64 if quick else 256, batches=[1, 16, 64], modes=modes)
    tradeoff = stage2_tradeoff(length=128 if quick else 256, batch=2 if quick else 8, step_mode="static")
    report = {
        "benchmark": "decode_cpu",
        "machine": machine,
        "bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "matmul_gflop_s": round(flops / 1e9, 1),
        "cached_step": {
            "length": length,
            "width": width,
            "start": start,
            "timings": steps,
            "bounds": bounds,
            "rounds": rounds,
        },
        "throughput": throughput,
        "stage2": tradeoff,
        "quick": quick,
    }
    write(report, args.out_dir)


def refresh_stage2(out_dir: Path, machine: dict, *, quick: bool) -> None:
    """Re-measure the stage-2 trade-off (after the shipped model changed) into the existing report."""
    path = out_dir / "decode-cpu.json"
    if not path.is_file():
        raise SystemExit(f"decode_cpu: --stage2-only updates an existing report, and {path} does not exist")
    report = json.loads(path.read_text())
    length, batch = (128, 2) if quick else (256, 8)
    report["stage2"] = stage2_tradeoff(length=length, batch=batch, step_mode="static")
    report["stage2_machine"] = machine
    write(report, out_dir)


def write(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "decode-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "decode-cpu.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    machine, step = report["machine"], report["cached_step"]
    bounds = step["bounds"]
    lines = [
        "# Decoding on CPU: cached step vs its bounds, sampler throughput, stage-2 trade-off",
        "",
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch {machine['torch']} with "
        f"{machine['torch_threads']} threads; load average at start {machine['load_average_at_start']} "
        "(shared with other jobs: figures are medians). Produced by `python benchmarks/decode_cpu.py`"
        + (" --quick" if report["quick"] else "")
        + ".",
        "",
        f"Measured: copy bandwidth {report['bandwidth_gb_s']} GB/s (256 MB tensor copy, read + write), "
        f"fp32 matmul {report['matmul_gflop_s']} GFLOP/s (1024^3).",
        "",
        f"## `tiny` cached block step: batch 1, width {step['width']}, cache length {step['length']}, "
        f"{step['start']} positions cached",
        "",
        f"Memory bound {bounds['memory_bound_ms']:.2f} ms ({bounds['weight_bytes'] / 1e6:.1f} MB weights + "
        f"{bounds['cache_bytes_read'] / 1e6:.1f} MB cache); FLOP bound {bounds['flop_bound_ms']:.2f} ms "
        f"({bounds['flops'] / 1e6:.1f} MFLOP). Target: within 2x of the memory bound. Stricter: the "
        f"bytes the folded step reads, {bounds['folded_weight_bytes'] / 1e6:.1f} MB weights + the cache, "
        f"bound {bounds['folded_memory_bound_ms']:.2f} ms.",
        "",
        f"Measured in {len(step['rounds'])} rounds, each a copy-bandwidth measurement then every mode's "
        "median step; a round's ratio uses its own bandwidth (the table: median and range over rounds).",
        "",
        "| step mode | step ms (median) | x memory bound | range over rounds | x folded-step bound "
        "| first call s |",
        "|---|---|---|---|---|---|",
    ]
    total_bytes = bounds["weight_bytes"] + bounds["cache_bytes_read"]
    folded_bytes = bounds["folded_weight_bytes"] + bounds["cache_bytes_read"]
    for name, timing in step["timings"].items():
        ratios = sorted(
            row[name] / (1e3 * total_bytes / (row["bandwidth_gb_s"] * 1e9)) for row in step["rounds"]
        )
        folded = sorted(
            row[name] / (1e3 * folded_bytes / (row["bandwidth_gb_s"] * 1e9)) for row in step["rounds"]
        )
        lines.append(
            f"| {name} | {timing['step_ms']:.2f} | {statistics.median(ratios):.2f} | "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f} | {statistics.median(folded):.2f} | "
            f"{timing['first_call_s']:.1f} |"
        )
    lines += [
        "",
        "## Sampler tokens/s (stage-1 plan `4`, first-hitting, random-init `tiny`)",
        "",
        "| step mode | batch | length | seconds | tokens/s | NFE/row | warm-up incl. compile s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["throughput"]:
        warmup = row.get("warmup_with_compile_s")
        lines.append(
            f"| {row['step_mode']} | {row['batch']} | {row['length']} | {row['seconds']} | "
            f"{row['tokens_per_s']} | {row['nfe_per_row']} | {'-' if warmup is None else warmup} |"
        )
    lines += [
        "",
        "## Stage-2 rule/steps trade-off (trained `tiny-shakespeare`, judged by `judge-shakespeare`)",
        "",
    ]
    if "stage2_machine" in report:  # re-measured alone with --stage2-only, after the model changed
        again = report["stage2_machine"]
        lines += [
            "Re-measured on the current shipped model with `python benchmarks/decode_cpu.py --stage2-only` "
            f"({again['cpu']}, torch {again['torch']} with {again['torch_threads']} threads; load "
            f"average at start {again['load_average_at_start']}).",
            "",
        ]
    lines += [
        "| stage-2 rule | plan | stage-2 NFE/row | stage-2 s | total s | Gen PPL | entropy |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["stage2"]:
        lines.append(
            f"| {row['rule']} | `{row['plan']}` | {row['stage2_nfe_per_row']:.1f} | "
            f"{row['stage2_seconds']} | {row['total_seconds']} | {row['gen_ppl']} | {row['entropy']} |"
        )
    lines += [
        "",
        "BD3-LM's reference sampler is not in this repository, so no side-by-side ratio is reported. "
        "GPU numbers (110M cached step, training tokens/s vs bf16 peak) are missing: no device was lent; "
        "`benchmarks/decode_gpu.py` is the prepared script.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
