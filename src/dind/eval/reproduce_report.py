"""Summaries of a ``dind reproduce`` run: paired differences, CSV, markdown and plots.

Per (model, plan): mean Gen PPL (mean of per-sample PPLs) with its standard error, the paired
difference against the stage-1-only plan on the same samples (same seeds, same drafts) with its
standard error, unigram entropy (BOS excluded), NFEs and wall time per sample (a plan's own cost as
if run alone: a shared stage-1 draft's NFEs and time included, though computed once), and whether every
sample's stage-1 draft equals the baseline's (it must, for plans that start with the baseline's
stage: the pairing rests on it; single-stage plans of another block size pair by seed only).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dind.eval.reproduce_plans import ReproduceConfig, sections
from dind.outputs import atomic_write, atomic_write_text

COLUMNS = ("model", "plan", "n", "gen_ppl", "se", "diff_vs_stage1", "diff_se", "stage1_ppl",
           "entropy", "nfe", "seconds_per_sample", "same_drafts")  # fmt: skip


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v == v]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def _per_sample(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[int, Any]]]:
    table: dict[tuple[str, str], dict[str, dict[int, Any]]] = defaultdict(lambda: defaultdict(dict))
    for record in records:
        for offset in range(record["count"]):
            index = record["start"] + offset
            cell = table[(record["model"], record["plan"])]
            for key in ("sample_ppl", "sample_entropy", "stage1_ppl", "stage1_digest", "nfe"):
                cell[key][index] = record[key][offset]
            cell["seconds"][index] = record["wall_time_s"] / record["count"]
    return table


def summarise(records: Sequence[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    table = _per_sample(records)
    rows = []
    for (model, plan), cell in table.items():
        base = table.get((model, baseline), {})
        ppl = cell["sample_ppl"]
        paired = [ppl[i] - base["sample_ppl"][i] for i in ppl if i in base.get("sample_ppl", {})]
        same: bool | str = "n/a"  # a plan whose stage 1 differs (BD3-LM B=8, 16) has its own drafts
        if plan.split("->")[0].strip() == baseline:
            same = all(base.get("stage1_digest", {}).get(i) == d for i, d in cell["stage1_digest"].items())
        mean, se = _mean_se(list(ppl.values()))
        diff, diff_se = _mean_se(paired)
        rows.append({
            "model": model, "plan": plan, "n": len(ppl), "gen_ppl": mean, "se": se,
            "diff_vs_stage1": diff, "diff_se": diff_se,
            "stage1_ppl": _mean_se(list(cell["stage1_ppl"].values()))[0],
            "entropy": _mean_se(list(cell["sample_entropy"].values()))[0],
            "nfe": _mean_se(list(cell["nfe"].values()))[0],
            "seconds_per_sample": _mean_se(list(cell["seconds"].values()))[0],
            "same_drafts": same,
        })  # fmt: skip
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.2f}"
    return str(value)


def _markdown_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS[1:]) + " |", "|" + "---|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in COLUMNS[1:]) + " |" for row in rows]
    return lines


def _drafts_line(records: Sequence[dict[str, Any]]) -> str:
    drafts = {(r["model"], r["start"]): r["stage1_wall_time_s"] for r in records if r.get("shared_draft")}
    if not drafts:
        return "Stage-1 drafts: not shared (every plan ran its own stage 1)."
    return (
        f"Stage-1 drafts: {len(drafts)} shared draft batches ({sum(drafts.values()):.0f} s in all), each "
        "computed once and reused by every plan that starts with the baseline's stage. nfe and "
        "seconds_per_sample are each plan's own cost as if run alone (the draft's NFEs and time "
        "included); the wall time above counts each draft once."
    )


def markdown(
    rows: Sequence[dict[str, Any]], config: ReproduceConfig, elapsed_s: float, *, machine: str = "",
    records: Sequence[dict[str, Any]] = (),
) -> str:  # fmt: skip
    by_key = {(row["model"], row["plan"]): row for row in rows}
    lines = [
        "# dind reproduce", "",
        f"Models: {', '.join(config.models)}; judge: {config.judge}; length {config.length}; "
        f"{config.num_samples} samples per plan, seed {config.seed}; quick={config.quick}.",
        f"Wall time of this invocation: {elapsed_s:.0f} s (resumed batches are not re-timed); "
        f"machine: {machine or 'not recorded'}.", "", _drafts_line(records), "",
        "gen_ppl: mean of per-sample judge perplexities (se: its standard error). diff_vs_stage1: mean of "
        "per-sample differences against the stage-1-only plan on the same seeds (negative = better than "
        "the draft). same_drafts: every sample's stage-1 draft equals the baseline's. entropy: unigram "
        "entropy (nats) of the generated bytes, BOS excluded. nfe: denoiser evaluations per sample.", "",
    ]  # fmt: skip
    titles = {
        "table1": "Table 1 analogue: plans vs NFE budgets (single-stage rows = BD3-LM-style baselines)",
        "table2": "Table 2 analogue: remasking signal at one ratio (same stage-1 drafts)",
        "figure2_block": "Figure 2 (left): stage-2 block size",
        "figure2_ratio": "Figure 2 (right): remask ratio",
        "axes": "Sampling axes: top-p, temperature, tracker, unmasking rule",
    }  # fmt: skip
    for model in config.models:
        lines += [f"## {model}", ""]
        for name, plans in sections(config).items():
            section = [by_key[(model, plan)] for plan in plans if (model, plan) in by_key]
            lines += [f"### {titles[name]}", "", *_markdown_table(section), ""]
    if len(config.models) > 1:
        refine = sections(config)["table2"][1]
        header = f"| model | stage 1 ({config.draft_block_size}) | stage 2 ({refine}) | paired diff |"
        lines += ["## Table 3 analogue: stage 1 vs stage 2 per model", "", header, "|---|---|---|---|"]
        for model in config.models:
            row = by_key.get((model, refine))
            if row:
                stage2 = f"{_fmt(row['gen_ppl'])} ± {_fmt(row['se'])}"
                diff = f"{_fmt(row['diff_vs_stage1'])} ± {_fmt(row['diff_se'])}"
                lines.append(f"| {model} | {_fmt(row['stage1_ppl'])} | {stage2} | {diff} |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], config: ReproduceConfig, path: Path) -> None:
    """Figure 2 analogues: each model's paired Gen PPL difference against its own stage-1 drafts
    (mean +- standard error) per stage-2 block size and per remask ratio; 0 = the draft."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, 2)
    for axis, name, label in (
        (axes[0], "figure2_block", "stage-2 block size"),
        (axes[1], "figure2_ratio", "remask ratio"),
    ):
        plans = sections(config)[name][1:]
        for index, model in enumerate(config.models):
            by_plan = {row["plan"]: row for row in rows if row["model"] == model}
            shown = [(x, by_plan[p]) for x, p in enumerate(plans) if p in by_plan]
            if not shown:
                continue
            axis.errorbar([x + 0.06 * index for x, _ in shown], [row["diff_vs_stage1"] for _, row in shown],
                          yerr=[row["diff_se"] for _, row in shown], marker="o", capsize=3,
                          label=Path(model).name or model)  # fmt: skip
        axis.axhline(0.0, color="grey", linestyle="--", label="stage-1 draft")
        axis.legend(fontsize=8)
        axis.set_xticks(
            range(len(plans)), [p.split("->")[1].split("/")[0].strip() for p in plans], rotation=30
        )
        axis.set_xlabel(label)
        axis.set_ylabel("Gen PPL - stage 1 (paired; lower is better)")
    figure.tight_layout()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)


def write_report(records, config: ReproduceConfig, out: Path, *, elapsed_s: float, machine: str = ""):
    rows = summarise(records, baseline=str(config.draft_block_size))
    with atomic_write(out / "results.csv", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(out / "report.md", markdown(rows, config, elapsed_s, machine=machine, records=records))
    plot(rows, config, out / "figure2.png")
    return rows, [out / "results.jsonl", out / "results.csv", out / "report.md", out / "figure2.png"]
