"""The plots of a ``dind reproduce`` run: Figure 2 analogues per judge, and Gen PPL against
entropy (where a plan sits against the draft at matched entropy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dind.eval.reproduce_claims import judge_label
from dind.eval.reproduce_plans import ReproduceConfig, sections
from dind.outputs import atomic_write


def plot_figure2(rows: Sequence[dict[str, Any]], config: ReproduceConfig, path: Path) -> None:
    """Figure 2 analogues, one row of panels per judge: each model's paired Gen PPL difference
    against its own stage-1 drafts (mean +- se) per stage-2 block size and per remask ratio."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    judges = [judge_label(j) for j in config.judges]
    figure = Figure(figsize=(10, 3.6 * len(judges)))
    axes = figure.subplots(len(judges), 2, squeeze=False)
    for row_axes, judge in zip(axes, judges, strict=True):
        for axis, name, label in (
            (row_axes[0], "figure2_block", "stage-2 block size"),
            (row_axes[1], "figure2_ratio", "remask ratio"),
        ):
            plans = sections(config)[name][1:]
            for index, model in enumerate(config.models):
                by_plan = {row["plan"]: row for row in rows if row["model"] == model}
                shown = [(x, by_plan[p][f"diff[{judge}]"]) for x, p in enumerate(plans) if p in by_plan]
                if not shown:
                    continue
                axis.errorbar(
                    [x + 0.06 * index for x, _ in shown],
                    [d.mean for _, d in shown],
                    yerr=[d.se for _, d in shown],
                    marker="o",
                    capsize=3,
                    label=Path(model).name or model,
                )
            axis.axhline(0.0, color="grey", linestyle="--", label="stage-1 draft")
            axis.legend(fontsize=8)
            axis.set_xticks(
                range(len(plans)), [p.split("->")[1].split("/")[0].strip() for p in plans], rotation=30
            )
            axis.set_xlabel(label)
            axis.set_ylabel(f"Gen PPL - stage 1 ({judge})")
    figure.tight_layout()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)


def plot_entropy(rows: Sequence[dict[str, Any]], config: ReproduceConfig, path: Path) -> None:
    """Gen PPL against unigram entropy, every plan, one panel per judge: a plan beats the draft
    at matched entropy only if it lies below the draft at the same entropy."""
    from matplotlib.figure import Figure

    judges = [judge_label(j) for j in config.judges]
    figure = Figure(figsize=(6 * len(judges), 5))
    axes = figure.subplots(1, len(judges), squeeze=False)[0]
    baseline = str(config.draft_block_size)
    for axis, judge in zip(axes, judges, strict=True):
        for model in config.models:
            mine = [row for row in rows if row["model"] == model]
            axis.errorbar(
                [r["entropy"] for r in mine],
                [r[f"gen_ppl[{judge}]"] for r in mine],
                yerr=[r[f"se[{judge}]"] for r in mine],
                fmt="o",
                capsize=2,
                label=Path(model).name or model,
            )
            for r in mine:
                axis.annotate(
                    r["plan"].replace("{unmasking=", "{"),
                    (r["entropy"], r[f"gen_ppl[{judge}]"]),
                    fontsize=5,
                    alpha=0.7,
                )
            draft = next((r for r in mine if r["plan"] == baseline), None)
            if draft is not None:
                axis.axhline(draft[f"gen_ppl[{judge}]"], color="grey", linestyle="--", linewidth=0.8)
                axis.axvline(draft["entropy"], color="grey", linestyle="--", linewidth=0.8)
        axis.set_xlabel("unigram entropy (nats; draft: dashed)")
        axis.set_ylabel(f"Gen PPL ({judge})")
        axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)
