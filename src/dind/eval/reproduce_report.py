"""Summaries of a ``dind reproduce`` run: paired differences, computed verdicts, CSV, markdown, plots.

Per (model, plan): per judge, mean Gen PPL (mean of per-sample PPLs) with its standard error and
the paired difference against the stage-1-only plan on the same samples (same seeds, same drafts);
unigram entropy and 4-gram repetition (generated tokens, BOS excluded) with their paired
differences; model NFE and scorer NFE (post-hoc remaskers' scoring forwards) and wall time per
sample (a plan's own cost as if run alone); and whether every sample's stage-1 draft equals the
baseline's (it must, for plans that start with the baseline's stage: the pairing rests on it).

Every verdict is computed by ``dind.eval.verdicts.RULE`` from the paired differences printed next
to it: the paper's orderings (``claims``), per judge, with the entropy difference beside each (a
lower Gen PPL bought with lower entropy is flagged), and where the judges disagree.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_plans import ReproduceConfig, sections
from dind.eval.verdicts import RULE, PairedDifference, mean_se
from dind.outputs import atomic_write, atomic_write_text

TITLES = {
    "table1": "Table 1 analogue: DiD against single-stage BD3-LM-style baselines",
    "budget": "Step budget (one unmasking rule; only the number of steps changes)",
    "table2": "Table 2 analogue: remasking signal at one ratio (same stage-1 drafts)",
    "figure2_block": "Figure 2 (left): stage-2 block size",
    "figure2_ratio": "Figure 2 (right): remask ratio",
    "rules": "Unmasking rule (first-hitting; ancestral and confidence top-k at 32 steps; threshold)",
    "axes": "Sampling axes: top-p, temperature, tracker",
}


def judge_label(path: str) -> str:
    return Path(path).name or str(path)


@attrs.frozen
class Cell:
    """One (model, plan): per-sample values by sample index."""

    ppl: dict[str, dict[int, float]]  # judge -> sample -> Gen PPL
    entropy: dict[int, float]
    repetition: dict[int, float]
    nfe: dict[int, float]
    scorer_nfe: dict[int, float]
    seconds: dict[int, float]
    digests: dict[int, str]


def cells(records: Sequence[dict[str, Any]], judges: Sequence[str]) -> dict[tuple[str, str], Cell]:
    table: dict[tuple[str, str], Cell] = {}
    for record in records:
        key = (record["model"], record["plan"])
        if key not in table:
            table[key] = Cell({j: {} for j in judges}, {}, {}, {}, {}, {}, {})
        cell, index = table[key], record["sample"]
        for judge in judges:
            cell.ppl[judge][index] = record["gen_ppl"][judge]
        cell.entropy[index] = record["entropy"]
        cell.repetition[index] = record["repetition_4gram"]
        cell.nfe[index] = record["nfe"]
        cell.scorer_nfe[index] = record["scorer_nfe"]
        cell.seconds[index] = record["seconds"]
        cell.digests[index] = record["stage1_digest"]
    return table


def _mean(values: dict[int, float]) -> float:
    return mean_se(list(values.values()))[0]


def summarise(
    records: Sequence[dict[str, Any]], baseline: str, judges: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per (model, plan): means, standard errors and paired differences vs ``baseline``."""
    table = cells(records, judges)
    rows = []
    for (model, plan), cell in table.items():
        base = table.get((model, baseline))
        same: bool | str = "n/a"  # a plan whose stage 1 differs (BD3-LM B=8, 16) has its own drafts
        if base is not None and plan.split("->")[0].strip() == baseline:
            same = all(base.digests.get(i) == d for i, d in cell.digests.items())
        row: dict[str, Any] = {
            "model": model, "plan": plan, "n": len(cell.entropy),
            "nfe": _mean(cell.nfe), "scorer_nfe": _mean(cell.scorer_nfe),
            "seconds_per_sample": _mean(cell.seconds), "same_drafts": same,
            "entropy": _mean(cell.entropy), "repetition_4gram": _mean(cell.repetition),
        }  # fmt: skip
        if base is not None:
            row["entropy_diff"] = PairedDifference.of(cell.entropy, base.entropy)
            row["repetition_diff"] = PairedDifference.of(cell.repetition, base.repetition)
        for judge in judges:
            mean, se = mean_se(list(cell.ppl[judge].values()))
            row[f"gen_ppl[{judge}]"], row[f"se[{judge}]"] = mean, se
            if base is not None:
                row[f"diff[{judge}]"] = PairedDifference.of(cell.ppl[judge], base.ppl[judge])
        rows.append(row)
    return rows


@attrs.frozen
class Claim:
    """A paper ordering: plan ``a`` has lower Gen PPL than plan ``b`` (same seeds, paired)."""

    text: str
    a: str
    b: str


def claims(config: ReproduceConfig) -> list[Claim]:
    """The paper's orderings that this run's plans can test."""
    s = sections(config)
    d, refine = s["table1"][0], s["table1"][3]
    found = [
        Claim("Table 1: DiD improves on its stage-1 draft", refine, d),
        Claim("Table 1: single-stage blocks of D beat blocks of 2D (BD3-LM)", d, s["table1"][1]),
        Claim("Table 1: single-stage blocks of D beat blocks of 4D (BD3-LM)", d, s["table1"][2]),
        Claim("Step budget: the largest budget beats the smallest", s["budget"][-1], s["budget"][1]),
    ]
    for plan in s["table2"][2:]:
        name = plan.split(":")[1].split("/")[0].split("{")[0]
        found.append(Claim(f"Table 2: snapshot confidence beats {name}", refine, plan))
    blocks = {p.split("->")[1].split("@")[0].strip(): p for p in s["figure2_block"][1:]}
    if "16" in blocks:
        found.append(Claim("Figure 2: a global stage-2 block beats blocks of 16", refine, blocks["16"]))
        if "64" in blocks:
            found.append(
                Claim("Figure 2: stage-2 blocks of 64 beat blocks of 16", blocks["64"], blocks["16"])
            )
    ratios = s["figure2_ratio"][1:]
    middle = next(p for p in ratios if p == refine)
    found += [
        Claim("Figure 2: U-shape, left arm: remask ratio 0.5 beats the smallest ratio", middle, ratios[0]),
        Claim("Figure 2: U-shape, right arm: remask ratio 0.5 beats the largest ratio", middle, ratios[-1]),
        Claim("Figure 2: gamma -> 1 degrades: the largest ratio is worse than the draft", d, ratios[-1]),
    ]
    return found


OUTCOME = {"lower": "holds", "higher": "reversed", "no difference": "no difference", "n/a": "n/a"}


def judge_claims(
    records: Sequence[dict[str, Any]], config: ReproduceConfig, judges: Sequence[str]
) -> list[dict[str, Any]]:
    """Per (model, claim, judge): the paired Gen PPL difference a - b, its outcome by the rule, and
    the paired entropy difference (a Gen PPL win with entropy lower by the rule is flagged)."""
    table = cells(records, judges)
    results = []
    for model in config.models:
        for claim in claims(config):
            a, b = table.get((model, claim.a)), table.get((model, claim.b))
            if a is None or b is None:
                continue
            entropy = PairedDifference.of(a.entropy, b.entropy)
            for judge in judges:
                diff = PairedDifference.of(a.ppl[judge], b.ppl[judge])
                outcome = OUTCOME[diff.verdict()]
                if outcome == "holds" and entropy.verdict() == "lower":
                    outcome = "holds, with lower entropy"
                results.append({"model": model, "claim": claim, "judge": judge, "diff": diff,
                                "entropy_diff": entropy, "outcome": outcome})  # fmt: skip
    return results


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 3 points."""

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result

    if len(x) < 3:
        return math.nan
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (sx * sy) if sx and sy else math.nan


def agreement(
    records: Sequence[dict[str, Any]], config: ReproduceConfig, judges: Sequence[str]
) -> list[dict[str, Any]]:
    """Per model and pair of judges: Spearman's rho of the plans' mean Gen PPL, and every pair of
    plans whose paired ordering the two judges call differently by the rule (at least one of them
    finding a difference)."""
    table = cells(records, judges)
    out = []
    for model in config.models:
        plans = [plan for (m, plan) in table if m == model]
        for j1, j2 in itertools.combinations(judges, 2):
            means1 = [_mean(table[(model, p)].ppl[j1]) for p in plans]
            means2 = [_mean(table[(model, p)].ppl[j2]) for p in plans]
            disagreements = []
            for p, q in itertools.combinations(plans, 2):
                a, b = table[(model, p)], table[(model, q)]
                d1 = PairedDifference.of(a.ppl[j1], b.ppl[j1])
                d2 = PairedDifference.of(a.ppl[j2], b.ppl[j2])
                v1, v2 = d1.verdict(), d2.verdict()
                if v1 != v2 and {v1, v2} & {"lower", "higher"}:
                    kind = "opposite" if {v1, v2} == {"lower", "higher"} else "one judge only"
                    disagreements.append({"a": p, "b": q, j1: d1, j2: d2, "kind": kind})
            out.append({"model": model, "judges": (j1, j2), "plans": len(plans),
                        "spearman": spearman(means1, means2), "disagreements": disagreements})  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------------
# files


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, PairedDifference):
        if not math.isfinite(value.mean):
            return "n/a"
        return f"{value.mean:+.{digits}f} ± {value.se:.{digits}f} ({value.verdict()})"
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.{digits}f}"
    return str(value)


def _table(rows: Sequence[dict[str, Any]], judges: Sequence[str]) -> list[str]:
    header = ["plan", "n", "NFE", "scorer NFE", "s/sample"]
    for judge in judges:
        header += [f"Gen PPL {judge}", f"Δ vs draft {judge}"]
    header += ["entropy", "Δ entropy", "4-gram rep.", "Δ 4-gram rep.", "same drafts"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells_ = [f"`{row['plan']}`", str(row["n"]), _fmt(row["nfe"], 1), _fmt(row["scorer_nfe"], 1),
                  _fmt(row["seconds_per_sample"])]  # fmt: skip
        for judge in judges:
            cells_ += [f"{_fmt(row[f'gen_ppl[{judge}]'])} ± {_fmt(row[f'se[{judge}]'])}",
                       _fmt(row.get(f"diff[{judge}]", "n/a"))]  # fmt: skip
        cells_ += [_fmt(row["entropy"], 3), _fmt(row.get("entropy_diff", "n/a"), 3),
                   _fmt(row["repetition_4gram"], 3), _fmt(row.get("repetition_diff", "n/a"), 3),
                   str(row["same_drafts"])]  # fmt: skip
        lines.append("| " + " | ".join(cells_) + " |")
    return lines


def _drafts_line(records: Sequence[dict[str, Any]]) -> str:
    drafts = {(r["model"], r["batch_start"]): r["stage1_seconds"] * r["batch_count"]
              for r in records if r.get("shared_draft")}  # fmt: skip
    if not drafts:
        return "Stage-1 drafts: not shared (every plan ran its own stage 1)."
    return (
        f"Stage-1 drafts: {len(drafts)} shared draft batches ({sum(drafts.values()):.0f} s in all), each "
        "computed once and reused by every plan that starts with the baseline's stage. NFE and "
        "s/sample are each plan's own cost as if run alone (the draft's NFEs and time included)."
    )


def markdown(
    rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], config: ReproduceConfig,
    elapsed_s: float, *, machine: str = "",
) -> str:  # fmt: skip
    judges = [judge_label(j) for j in config.judges]
    by_key = {(row["model"], row["plan"]): row for row in rows}
    lines = [
        "# dind reproduce", "",
        f"Models: {', '.join(config.models)}; judges: {', '.join(config.judges)}; length {config.length}; "
        f"{config.num_samples} samples per plan, seed {config.seed}; quick={config.quick}.",
        f"Wall time of this invocation: {elapsed_s:.0f} s (samples already on disk are reused, not "
        f"re-timed); machine: {machine or 'not recorded'}.", "", _drafts_line(records), "",
        "Samples: `samples/<model>/<plan>.jsonl` (tokens, text, seed, NFEs per sample; `dind eval` "
        "rescores them with any judge). Gen PPL: mean of per-sample judge perplexities ± its "
        "standard error. Δ vs draft: mean ± se of per-sample differences against the stage-1-only "
        "plan on the same seeds (negative = lower than the draft). NFE: the model's denoising "
        "evaluations per sample; scorer NFE: the extra forwards of post-hoc remasking scorers. "
        "Entropy: unigram entropy (nats) of the generated tokens; 4-gram rep.: share of repeated "
        "4-grams. same drafts: every sample's stage-1 draft equals the baseline's.", "",
        f"Verdicts (`dind.eval.verdicts`): {RULE}. \"lower\" / \"higher\" / \"no difference\"; for a "
        "claim, \"holds\" / \"reversed\" / \"no difference\", and \"holds, with lower entropy\" when "
        "the winner's entropy is also lower by the rule (Gen PPL rewards low entropy; such a win may "
        "vanish at matched entropy: see genppl_vs_entropy.png).", "",
    ]  # fmt: skip
    judged = judge_claims(records, config, judges)
    lines += ["## The paper's orderings, by the rule", "",
              "| model | claim | a | b | judge | Gen PPL a - b | entropy a - b | outcome |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for item in judged:
        claim = item["claim"]
        lines.append(
            f"| {Path(item['model']).name} | {claim.text} | `{claim.a}` | `{claim.b}` | {item['judge']} | "
            f"{_fmt(item['diff'])} | {_fmt(item['entropy_diff'], 3)} | **{item['outcome']}** |"
        )
    if judged:
        counts = [
            f"{judge}: " + ", ".join(f"{k} {v}" for k, v in sorted(_count(judged, judge).items()))
            for judge in judges
        ]
        lines += ["", "Outcome counts: " + "; ".join(counts) + ".", ""]
    for model in config.models:
        lines += [f"## {model}", ""]
        for name, plans in sections(config).items():
            section = [by_key[(model, plan)] for plan in plans if (model, plan) in by_key]
            lines += [f"### {TITLES[name]}", "", *_table(section, judges), ""]
    if len(judges) > 1:
        lines += _agreement_lines(agreement(records, config, judges))
    if len(config.models) > 1:
        lines += _table3_lines(by_key, config, judges)
    return "\n".join(lines) + "\n"


def _count(judged: Sequence[dict[str, Any]], judge: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in judged:
        if item["judge"] == judge:
            counts[item["outcome"]] += 1
    return counts


def _agreement_lines(found: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["## Judge agreement", "",
             "Spearman's rho of the plans' mean Gen PPL under two judges, and every ordering of two "
             "plans (paired, same seeds) the judges call differently by the rule.", ""]  # fmt: skip
    for item in found:
        j1, j2 = item["judges"]
        opposite = [d for d in item["disagreements"] if d["kind"] == "opposite"]
        lines += [
            f"### {Path(item['model']).name}: {j1} vs {j2}", "",
            f"Spearman's rho over {item['plans']} plans: {_fmt(item['spearman'], 3)}. Orderings called "
            f"differently: {len(item['disagreements'])} of {item['plans'] * (item['plans'] - 1) // 2} "
            f"pairs ({len(opposite)} opposite, {len(item['disagreements']) - len(opposite)} found by one "
            "judge only).", "",
        ]  # fmt: skip
        if item["disagreements"]:
            lines += [f"| a | b | a - b {j1} | a - b {j2} | kind |", "|---|---|---|---|---|"]
            for d in sorted(item["disagreements"], key=lambda d: d["kind"] != "opposite"):
                lines.append(f"| `{d['a']}` | `{d['b']}` | {_fmt(d[j1])} | {_fmt(d[j2])} | {d['kind']} |")
            lines.append("")
    return lines


def _table3_lines(by_key, config: ReproduceConfig, judges: Sequence[str]) -> list[str]:
    d, refine = sections(config)["table1"][0], sections(config)["table1"][3]
    lines = ["## Table 3 analogue: stage 1 vs stage 2 per model", "",
             f"| model | judge | stage 1 (`{d}`) | stage 2 (`{refine}`) | stage 2 - stage 1 |",
             "|---|---|---|---|---|"]  # fmt: skip
    for model in config.models:
        first, second = by_key.get((model, d)), by_key.get((model, refine))
        if not (first and second):
            continue
        for judge in judges:
            lines.append(
                f"| {model} | {judge} | {_fmt(first[f'gen_ppl[{judge}]'])} ± {_fmt(first[f'se[{judge}]'])} | "
                f"{_fmt(second[f'gen_ppl[{judge}]'])} ± {_fmt(second[f'se[{judge}]'])} | "
                f"{_fmt(second.get(f'diff[{judge}]', 'n/a'))} |"
            )
    return [*lines, ""]


def plot_figure2(rows: Sequence[dict[str, Any]], config: ReproduceConfig, path: Path) -> None:
    """Figure 2 analogues, one row of panels per judge: each model's paired Gen PPL difference
    against its own stage-1 drafts (mean +- se) per stage-2 block size and per remask ratio."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    judges = [judge_label(j) for j in config.judges]
    figure = Figure(figsize=(10, 3.6 * len(judges)))
    axes = figure.subplots(len(judges), 2, squeeze=False)
    for row_axes, judge in zip(axes, judges, strict=True):
        for axis, name, label in ((row_axes[0], "figure2_block", "stage-2 block size"),
                                  (row_axes[1], "figure2_ratio", "remask ratio")):  # fmt: skip
            plans = sections(config)[name][1:]
            for index, model in enumerate(config.models):
                by_plan = {row["plan"]: row for row in rows if row["model"] == model}
                shown = [(x, by_plan[p][f"diff[{judge}]"]) for x, p in enumerate(plans) if p in by_plan]
                if not shown:
                    continue
                axis.errorbar([x + 0.06 * index for x, _ in shown], [d.mean for _, d in shown],
                              yerr=[d.se for _, d in shown], marker="o", capsize=3,
                              label=Path(model).name or model)  # fmt: skip
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
            axis.errorbar([r["entropy"] for r in mine], [r[f"gen_ppl[{judge}]"] for r in mine],
                          yerr=[r[f"se[{judge}]"] for r in mine], fmt="o", capsize=2,
                          label=Path(model).name or model)  # fmt: skip
            for r in mine:
                axis.annotate(r["plan"].replace("{unmasking=", "{"), (r["entropy"], r[f"gen_ppl[{judge}]"]),
                              fontsize=5, alpha=0.7)  # fmt: skip
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


def _csv_value(value: Any) -> Any:
    return value.mean if isinstance(value, PairedDifference) else value


def write_report(records, config: ReproduceConfig, out: Path, *, elapsed_s: float, machine: str = ""):
    judges = [judge_label(j) for j in config.judges]
    rows = summarise(records, str(config.draft_block_size), judges)
    columns = ["model", "plan", "n", "nfe", "scorer_nfe", "seconds_per_sample", "same_drafts"]
    for judge in judges:
        columns += [f"gen_ppl[{judge}]", f"se[{judge}]", f"diff[{judge}]", f"diff_se[{judge}]",
                    f"verdict[{judge}]"]  # fmt: skip
    columns += ["entropy", "entropy_diff", "entropy_diff_se", "repetition_4gram", "repetition_diff"]
    with atomic_write(out / "results.csv", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = {key: _csv_value(value) for key, value in row.items()}
            for judge in judges:
                diff = row.get(f"diff[{judge}]")
                if diff is not None:
                    flat[f"diff_se[{judge}]"], flat[f"verdict[{judge}]"] = diff.se, diff.verdict()
            if "entropy_diff" in row:
                flat["entropy_diff_se"] = row["entropy_diff"].se
            writer.writerow(flat)
    text = markdown(rows, records, config, elapsed_s, machine=machine)
    atomic_write_text(out / "report.md", text)
    plot_figure2(rows, config, out / "figure2.png")
    plot_entropy(rows, config, out / "genppl_vs_entropy.png")
    files = [out / "samples", out / "results.csv", out / "report.md", out / "figure2.png",
             out / "genppl_vs_entropy.png"]  # fmt: skip
    return rows, files
