"""The per-sample table of a ``dind reproduce`` run and what is computed from it: each (model,
plan)'s values by sample id, the paper's orderings (``claims``) judged per judge by
``dind.eval.verdicts.RULE`` with the entropy difference beside each, and the judges' agreement
(Spearman's rho of plan means, every ordering two judges call differently)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_plans import ReproduceConfig, sections
from dind.eval.verdicts import PairedDifference, mean_se


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
            "model": model,
            "plan": plan,
            "n": len(cell.entropy),
            "nfe": _mean(cell.nfe),
            "scorer_nfe": _mean(cell.scorer_nfe),
            "seconds_per_sample": _mean(cell.seconds),
            "same_drafts": same,
            "entropy": _mean(cell.entropy),
            "repetition_4gram": _mean(cell.repetition),
        }
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


def judge_pair(a: Cell, b: Cell, judges: Sequence[str]) -> list[dict[str, Any]]:
    """Per judge: the paired Gen PPL difference a - b, its outcome by the rule ("holds" when a is
    lower; flagged "with lower entropy" when a's entropy is also lower by the rule) and the paired
    entropy difference."""
    entropy = PairedDifference.of(a.entropy, b.entropy)
    results = []
    for judge in judges:
        diff = PairedDifference.of(a.ppl[judge], b.ppl[judge])
        outcome = OUTCOME[diff.verdict()]
        if outcome == "holds" and entropy.verdict() == "lower":
            outcome = "holds, with lower entropy"
        results.append({"judge": judge, "diff": diff, "entropy_diff": entropy, "outcome": outcome})
    return results


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
            results += [{"model": model, "claim": claim, **item} for item in judge_pair(a, b, judges)]
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
            out.append(
                {
                    "model": model,
                    "judges": (j1, j2),
                    "plans": len(plans),
                    "spearman": spearman(means1, means2),
                    "disagreements": disagreements,
                }
            )
    return out
