"""Refinement at the speed of drafting? Stage-2 rules and refine caches on the shipped tiny model.

    python benchmarks/refine_cpu.py [--num-samples 32] [--length 256] [--batch-size 8]

One stage-1 draft (block 4, first-hitting) per batch is shared by every stage-2 variant
(``continue_plan``: the same tokens as a full run), so each variant's stage 2 is timed on the same
drafts and seeds. Variants: exact first-hitting (today's default), ancestral with a step budget,
and the skeleton refine cache at several refresh intervals. Each is scored by the shipped judge
(judge-shakespeare, byte-level, exact ids): Gen PPL per sample, unigram entropy, 4-gram
repetition; differences against exact first-hitting are paired per sample (mean and standard
error). CPU, 1 thread, fp32. Writes benchmarks/results/refine-cpu.md and .json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from importlib import resources
from pathlib import Path

import torch
from backbone_cpu import cpu_model  # the benchmarks' shared machine line

import dind
from dind.eval import load_judge, repeated_ngram_rate
from dind.eval.report import evaluate
from dind.sampling import GenerateOptions, StagePlan, continue_plan, generate
from dind.sampling.seeds import row_seed

RESULTS = Path(__file__).resolve().parent / "results"
DRAFT = "4"
VARIANTS = {
    "exact first-hitting": "4 -> L@0.5",
    "ancestral /32": "4 -> L@0.5/32{unmasking=ancestral}",
    "skeleton every 4": "4 -> L@0.5{cache=skeleton(every=4)}",
    "skeleton every 8": "4 -> L@0.5{cache=skeleton(every=8)}",
    "skeleton every 16": "4 -> L@0.5{cache=skeleton(every=16)}",
    "skeleton every 32": "4 -> L@0.5{cache=skeleton(every=32)}",
}
REFERENCE = "exact first-hitting"


def _score(judge, rows: list[list[int]]) -> tuple[list[float], list[float], list[float]]:
    report = evaluate(judge, [""] * len(rows), tokens=rows, byte_tokens=True)
    repetition = [repeated_ngram_rate(row[1:], 4) for row in rows]
    return report["sample_ppl"], report["sample_entropy"], repetition


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    assets = resources.files("dind") / "assets"
    model = dind.load(str(assets / "tiny-shakespeare"))
    judge = load_judge(str(assets / "judge-shakespeare"), device="cpu")
    options = GenerateOptions(bos_id=256)
    plans = {name: StagePlan.parse(text) for name, text in VARIANTS.items()}
    out: dict = {name: {"stage2_s": 0.0, "rows": []} for name in VARIANTS}
    out["draft"] = {"stage1_s": 0.0, "rows": []}
    for start in range(0, args.num_samples, args.batch_size):
        count = min(args.batch_size, args.num_samples - start)
        seeds = [row_seed(args.seed, index) for index in range(start, start + count)]
        with torch.no_grad():
            draft = generate(
                model,
                StagePlan.parse(DRAFT),
                length=args.length,
                batch_size=count,
                seed=seeds,
                options=options,
            )
        out["draft"]["stage1_s"] += draft.trace[0].wall_time_s
        out["draft"]["rows"] += draft.tokens.tolist()
        for name, plan in plans.items():
            began = time.perf_counter()
            with torch.no_grad():
                result = continue_plan(model, plan, draft, options=options)
            out[name]["stage2_s"] += time.perf_counter() - began
            out[name]["rows"] += result.tokens.tolist()
            out[name].setdefault("nfe2", []).extend(result.trace[1].nfe.tolist())
            out[name].setdefault("passes2", 0)
            out[name]["passes2"] += result.trace[1].forward_passes
        print(f"samples {start}..{start + count - 1} done", flush=True)
    for name in ["draft", *VARIANTS]:
        ppl, entropy, repetition = _score(judge, out[name]["rows"])
        out[name].update(ppl=ppl, entropy=entropy, repetition=repetition)
    return out


def report(out: dict, args: argparse.Namespace, load: tuple[float, float]) -> str:
    stage1 = out["draft"]["stage1_s"]
    reference = out[REFERENCE]
    lines = [
        "# Stage-2 refinement: rules and refine caches (tiny model, CPU)",
        "",
        f"`python benchmarks/refine_cpu.py --num-samples {args.num_samples} --length {args.length} "
        f"--batch-size {args.batch_size}`: the shipped tiny-shakespeare model, batch {args.batch_size}, "
        f"L = {args.length}, stage 1 = block 4 first-hitting shared by every variant (`continue_plan`), "
        "stage 2 = one global block at remask ratio 0.5; scored by the shipped byte-level judge "
        "(judge-shakespeare; the only shipped judge today). Paired differences against exact "
        "first-hitting on the same drafts and seeds; a difference counts when |mean| > 2 se.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread, fp32; "
        f"load average {load[0]:.2f} before, {load[1]:.2f} after (a loaded machine stretches times; "
        "the ratios to stage 1 are what to compare).",
        "",
        f"Stage 1 (the draft): {stage1:.1f} s for {args.num_samples} samples; Gen PPL "
        f"{_mean_se(out['draft']['ppl'])[0]:.2f}, entropy {_mean_se(out['draft']['entropy'])[0]:.3f}.",
        "",
        "| stage 2 | stage 2 (s) | stage 2 / stage 1 | two stages / stage 1 | forward passes | Gen PPL "
        "(mean ± se) | Δ Gen PPL vs exact | entropy | Δ entropy vs exact | 4-gram repetition |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in VARIANTS:
        row = out[name]
        ppl, ppl_se = _mean_se(row["ppl"])
        entropy, entropy_se = _mean_se(row["entropy"])
        repetition, _ = _mean_se(row["repetition"])
        d_ppl = _mean_se([a - b for a, b in zip(row["ppl"], reference["ppl"], strict=True)])
        d_entropy = _mean_se([a - b for a, b in zip(row["entropy"], reference["entropy"], strict=True)])
        diff = (
            "—"
            if name == REFERENCE
            else f"{d_ppl[0]:+.2f} ± {d_ppl[1]:.2f}{' *' if abs(d_ppl[0]) > 2 * d_ppl[1] else ''}"
        )
        diff_entropy = (
            "—"
            if name == REFERENCE
            else f"{d_entropy[0]:+.3f} ± {d_entropy[1]:.3f}"
            f"{' *' if abs(d_entropy[0]) > 2 * d_entropy[1] else ''}"
        )
        lines.append(
            f"| `{VARIANTS[name]}` ({name}) | {row['stage2_s']:.1f} | {row['stage2_s'] / stage1:.2f} | "
            f"{(stage1 + row['stage2_s']) / stage1:.2f} | {row['passes2']} | "
            f"{ppl:.2f} ± {ppl_se:.2f} | {diff} | "
            f"{entropy:.3f} ± {entropy_se:.3f} | {diff_entropy} | {repetition:.3f} |"
        )
    lines += ["", "`*`: |mean| > 2 se, a difference by the rule; otherwise none shown.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "refine-cpu.md")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    out = run(args)
    text = report(out, args, (before, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw = {name: {k: v for k, v in row.items() if k != "rows"} for name, row in out.items()}
    args.out.with_suffix(".json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **raw}))
    print(text)


if __name__ == "__main__":
    main()
