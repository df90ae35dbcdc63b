"""Table 1's long row at small scale: sampling at twice the model's context, with and without windows.

    python benchmarks/long_window.py [--num-samples 16] [--batch-size 8]

The shipped demo model (context 256) at length 512: stage 1 alone (``4``) and DiD
(``4 -> L@0.5/32{unmasking=ancestral}``: 32 steps per refinement window, as cheap as
first-hitting is not at 512 on a CPU; benchmarks/results/refine-cpu.md finds it no different from
first-hitting at 256), each run two ways on the same seeds:

- windowed: dind's default beyond the context (``dind.sampling.windows``: every block attends to
  at most 256 positions, BD3-LM's rule; refinement in windows of 256 moving by 128);
- unwindowed: the same weights declared with a 512-position context (``dind.load(...,
  model_length=512)``), so every forward attends over up to 512 positions, twice what the model
  was trained on: what a sampler without windows does.

Both shipped judges score every sample (exact byte ids); paired differences (same seeds) are
judged by ``dind.eval.verdicts.RULE``: does the window help, and does refinement still help at 512?
Writes benchmarks/results/long-window-cpu.{md,json} and the samples (JSONL).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import torch

import dind
from dind.eval import load_judge
from dind.eval.entropy import unigram_entropy
from dind.eval.report import evaluate
from dind.eval.verdicts import RULE, PairedDifference, mean_se
from dind.sampling import GenerateOptions, StagePlan, generate
from dind.sampling.seeds import row_seed

RESULTS = Path(__file__).resolve().parent / "results"
PLANS = ("4", "4 -> L@0.5/32{unmasking=ancestral}")
JUDGES = ("judge-shakespeare", "judge-kn-shakespeare")


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    models = {"windowed": dind.load("demo"), "unwindowed": dind.load("demo", model_length=args.length)}
    options = GenerateOptions(bos_id=256)
    out: dict = {}
    for way, model in models.items():
        for plan in PLANS:
            rows, seconds, nfe = [], 0.0, []
            for start in range(0, args.num_samples, args.batch_size):
                count = min(args.batch_size, args.num_samples - start)
                seeds = [row_seed(args.seed, i) for i in range(start, start + count)]
                began = time.perf_counter()
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the windowed run says it is windowed: known here
                    result = generate(model, StagePlan.parse(plan), length=args.length, batch_size=count,
                                      seed=seeds, options=options)  # fmt: skip
                seconds += time.perf_counter() - began
                rows += result.tokens.tolist()
                nfe += result.nfe.tolist()
            out[f"{way} | {plan}"] = {"way": way, "plan": plan, "rows": rows, "seconds": seconds, "nfe": nfe}
            print(f"{way} | {plan}: {seconds:.1f} s", flush=True)
    for name in JUDGES:
        judge = load_judge(name)
        for cell in out.values():
            cell[f"ppl {name}"] = evaluate(
                judge, [""] * len(cell["rows"]), tokens=cell["rows"], byte_tokens=True
            )["sample_ppl"]
    for cell in out.values():
        cell["entropy"] = [unigram_entropy(row[1:]) for row in cell["rows"]]
    return out


def _cell(values: list[float], digits: int = 2) -> str:
    mean, se = mean_se(values)
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _diff(a: list[float], b: list[float], digits: int = 2) -> str:
    d = PairedDifference.of(a, b)
    return f"{d.mean:+.{digits}f} ± {d.se:.{digits}f} ({d.verdict()})"


def report(out: dict, args: argparse.Namespace, load: tuple[float, float]) -> str:
    lines = [
        "# Beyond the context: windows at twice the model's context (tiny model, CPU)",
        "",
        f"`python benchmarks/long_window.py --num-samples {args.num_samples} "
        f"--batch-size {args.batch_size}`: the shipped demo model (context 256) at length {args.length}, "
        f"{args.num_samples} samples per cell, "
        "the same seeds in every cell. Windowed: dind's default beyond the context (blocks attend to at "
        "most 256 positions; refinement in windows of 256 moving by 128). Unwindowed: the same weights "
        f"declared with a {args.length}-position context, attending over up to {args.length} positions. "
        f"Verdicts: {RULE}.",
        "",
        f"Machine: {os.cpu_count()} cores, torch {torch.__version__}, 1 thread; load average "
        f"{load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        "| plan | way | seconds | NFE | " + " | ".join(f"Gen PPL {j}" for j in JUDGES) + " | entropy |",
        "|---|---|---|---|" + "---|" * len(JUDGES) + "---|",
    ]
    for cell in out.values():
        ppl = " | ".join(_cell(cell[f"ppl {j}"]) for j in JUDGES)
        nfe = mean_se(cell["nfe"])[0]
        lines.append(
            f"| `{cell['plan']}` | {cell['way']} | {cell['seconds']:.1f} | {nfe:.0f} | {ppl} | "
            f"{_cell(cell['entropy'], 3)} |"
        )
    lines += [
        "",
        "## Paired differences",
        "",
        "| comparison | " + " | ".join(f"{j}" for j in JUDGES) + " | entropy |",
        "|---|" + "---|" * len(JUDGES) + "---|",
    ]
    comparisons = [
        ("windowed - unwindowed, stage 1 `4`", "windowed | 4", "unwindowed | 4"),
        ("windowed - unwindowed, DiD", f"windowed | {PLANS[1]}", f"unwindowed | {PLANS[1]}"),
        ("DiD - stage 1, windowed", f"windowed | {PLANS[1]}", "windowed | 4"),
        ("DiD - stage 1, unwindowed", f"unwindowed | {PLANS[1]}", "unwindowed | 4"),
    ]
    for text, a, b in comparisons:
        cells = [_diff(out[a][f"ppl {j}"], out[b][f"ppl {j}"]) for j in JUDGES]
        cells.append(_diff(out[a]["entropy"], out[b]["entropy"], 3))
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    window_helps = [
        PairedDifference.of(out[a][f"ppl {j}"], out[b][f"ppl {j}"]).verdict()
        for _, a, b in comparisons[:2]
        for j in JUDGES
    ]
    lines += [
        "",
        "Does the window help (lower Gen PPL than unwindowed, by the rule)? "
        + ", ".join(
            f"{plan} under {judge}: {verdict}"
            for (plan, judge), verdict in zip(
                [(p, j) for p in ("stage 1", "DiD") for j in JUDGES], window_helps, strict=True
            )
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "long-window-cpu.md")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    out = run(args)
    text = report(out, args, (before, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    with args.out.with_name(args.out.stem + "-samples.jsonl").open("w") as file:
        for name, cell in out.items():
            for index, row in enumerate(cell["rows"]):
                file.write(json.dumps({"cell": name, "sample": index, "seed": row_seed(args.seed, index),
                                       "tokens": row}) + "\n")  # fmt: skip
    summary = {name: {k: v for k, v in cell.items() if k != "rows"} for name, cell in out.items()}
    args.out.with_suffix(".json").write_text(
        json.dumps({"args": vars(args) | {"out": str(args.out)}, **summary})
    )
    print(text)


if __name__ == "__main__":
    main()
