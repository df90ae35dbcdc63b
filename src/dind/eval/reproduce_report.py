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
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dind.eval.reproduce_claims import (  # noqa: F401 (claims, spearman: the report's public names)
    agreement,
    claims,
    judge_claims,
    judge_label,
    spearman,
    summarise,
)
from dind.eval.reproduce_plans import ReproduceConfig, sections
from dind.eval.reproduce_plots import plot_entropy, plot_figure2
from dind.eval.verdicts import RULE, PairedDifference
from dind.outputs import atomic_write, atomic_write_text
from dind.shipped import display_name

TITLES = {
    "table1": "Table 1 analogue: DiD against single-stage BD3-LM-style baselines",
    "budget": "Step budget (one unmasking rule; only the number of steps changes)",
    "table2": "Table 2 analogue: remasking signal at one ratio (same stage-1 drafts)",
    "figure2_block": "Figure 2 (left): stage-2 block size",
    "figure2_ratio": "Figure 2 (right): remask ratio",
    "rules": "Unmasking rule (first-hitting; ancestral and confidence top-k at 32 steps; threshold)",
    "axes": "Sampling axes: top-p, temperature, tracker",
}


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
        cells_ = [
            f"`{row['plan']}`",
            str(row["n"]),
            _fmt(row["nfe"], 1),
            _fmt(row["scorer_nfe"], 1),
            _fmt(row["seconds_per_sample"]),
        ]
        for judge in judges:
            cells_ += [
                f"{_fmt(row[f'gen_ppl[{judge}]'])} ± {_fmt(row[f'se[{judge}]'])}",
                _fmt(row.get(f"diff[{judge}]", "n/a")),
            ]
        cells_ += [
            _fmt(row["entropy"], 3),
            _fmt(row.get("entropy_diff", "n/a"), 3),
            _fmt(row["repetition_4gram"], 3),
            _fmt(row.get("repetition_diff", "n/a"), 3),
            str(row["same_drafts"]),
        ]
        lines.append("| " + " | ".join(cells_) + " |")
    return lines


def _drafts_line(records: Sequence[dict[str, Any]]) -> str:
    drafts = {
        (r["model"], r["batch_start"]): r["stage1_seconds"] * r["batch_count"]
        for r in records
        if r.get("shared_draft")
    }
    if not drafts:
        return "Stage-1 drafts: not shared (every plan ran its own stage 1)."
    return (
        f"Stage-1 drafts: {len(drafts)} shared draft batches ({sum(drafts.values()):.0f} s in all), each "
        "computed once and reused by every plan that starts with the baseline's stage. NFE and "
        "s/sample are each plan's own cost as if run alone (the draft's NFEs and time included)."
    )


def markdown(
    rows: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    config: ReproduceConfig,
    elapsed_s: float,
    *,
    machine: str = "",
) -> str:
    judges = [judge_label(j) for j in config.judges]
    by_key = {(row["model"], row["plan"]): row for row in rows}
    lines = [
        "# dind reproduce",
        "",
        f"Models: {', '.join(map(display_name, config.models))}; "
        f"judges: {', '.join(map(display_name, config.judges))}; length {config.length}; "
        f"{config.num_samples} samples per plan, seed {config.seed}; quick={config.quick}.",
        f"Wall time of this invocation: {elapsed_s:.0f} s (samples already on disk are reused, not "
        f"re-timed); machine: {machine or 'not recorded'}.",
        "",
        _drafts_line(records),
        "",
        "Samples: `samples/<model>/<plan>.jsonl` (tokens, text, seed, NFEs per sample; `dind eval` "
        "rescores them with any judge). Gen PPL: mean of per-sample judge perplexities ± its "
        "standard error. Δ vs draft: mean ± se of per-sample differences against the stage-1-only "
        "plan on the same seeds (negative = lower than the draft). NFE: the model's denoising "
        "evaluations per sample; scorer NFE: the extra forwards of post-hoc remasking scorers. "
        "Entropy: unigram entropy (nats) of the generated tokens; 4-gram rep.: share of repeated "
        "4-grams. same drafts: every sample's stage-1 draft equals the baseline's.",
        "",
        f'Verdicts (`dind.eval.verdicts`): {RULE}. "lower" / "higher" / "no difference"; for a '
        'claim, "holds" / "reversed" / "no difference", and "holds, with lower entropy" when '
        "the winner's entropy is also lower by the rule (Gen PPL rewards low entropy; such a win may "
        "vanish at matched entropy: see genppl_vs_entropy.png).",
        "",
    ]
    judged = judge_claims(records, config, judges)
    lines += [
        "## The paper's orderings, by the rule",
        "",
        "| model | claim | a | b | judge | Gen PPL a - b | entropy a - b | outcome |",
        "|---|---|---|---|---|---|---|---|",
    ]
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
        from dind.eval.reproduce_table3 import markdown_lines

        lines += markdown_lines(by_key, records, config, judges, fmt=_fmt)
    return "\n".join(lines) + "\n"


def _count(judged: Sequence[dict[str, Any]], judge: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in judged:
        if item["judge"] == judge:
            counts[item["outcome"]] += 1
    return counts


def _agreement_lines(found: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "## Judge agreement",
        "",
        "Spearman's rho of the plans' mean Gen PPL under two judges, and every ordering of two "
        "plans (paired, same seeds) the judges call differently by the rule.",
        "",
    ]
    for item in found:
        j1, j2 = item["judges"]
        opposite = [d for d in item["disagreements"] if d["kind"] == "opposite"]
        lines += [
            f"### {Path(item['model']).name}: {j1} vs {j2}",
            "",
            f"Spearman's rho over {item['plans']} plans: {_fmt(item['spearman'], 3)}. Orderings called "
            f"differently: {len(item['disagreements'])} of {item['plans'] * (item['plans'] - 1) // 2} "
            f"pairs ({len(opposite)} opposite, {len(item['disagreements']) - len(opposite)} found by one "
            "judge only).",
            "",
        ]
        if item["disagreements"]:
            lines += [f"| a | b | a - b {j1} | a - b {j2} | kind |", "|---|---|---|---|---|"]
            for d in sorted(item["disagreements"], key=lambda d: d["kind"] != "opposite"):
                lines.append(f"| `{d['a']}` | `{d['b']}` | {_fmt(d[j1])} | {_fmt(d[j2])} | {d['kind']} |")
            lines.append("")
    return lines


def _csv_value(value: Any) -> Any:
    return value.mean if isinstance(value, PairedDifference) else value


def write_report(
    records,
    config: ReproduceConfig,
    out: Path,
    *,
    elapsed_s: float,
    machine: str = "",
    more: Sequence[str] = (),
):
    """results.csv, report.md (with ``more``: markdown lines of further sections) and the plots."""
    judges = [judge_label(j) for j in config.judges]
    rows = summarise(records, str(config.draft_block_size), judges)
    columns = ["model", "plan", "n", "nfe", "scorer_nfe", "seconds_per_sample", "same_drafts"]
    for judge in judges:
        columns += [
            f"gen_ppl[{judge}]",
            f"se[{judge}]",
            f"diff[{judge}]",
            f"diff_se[{judge}]",
            f"verdict[{judge}]",
        ]
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
    text = markdown(rows, records, config, elapsed_s, machine=machine) + "\n".join(more)
    atomic_write_text(out / "report.md", text)
    plot_figure2(rows, config, out / "figure2.png")
    plot_entropy(rows, config, out / "genppl_vs_entropy.png")
    files = [
        out / "samples",
        out / "results.csv",
        out / "report.md",
        out / "figure2.png",
        out / "genppl_vs_entropy.png",
    ]
    return rows, files
