"""PAPER Table 3 in ``dind reproduce``: the orderings between models trained with different
block-size laws, judged by ``dind.eval.verdicts.RULE`` like every other claim.

A model's law is read from its training config (``train_config.yaml`` in the checkpoint, or in a
run directory's latest checkpoint): ``objective.block_sizes``' name (``fixed`` = no mix,
``uniform``, ``bimodal``). A claim is made only when exactly one model has each law it names, so a
report never guesses which model is which. Models are compared sample by sample: sample i of every
model uses the same seed, so ``a - b`` is a paired difference over seeds (the drafts differ, since
the models do: this is a comparison of the whole pipelines).

The paper's orderings (PAPER.md, Table 3; Gen PPL stage 1 / stage 2: no mix 27.95 / 31.97, uniform
31.98 / 22.60, bimodal 27.26 / 21.46):

- without a mix, refining makes the sample worse (stage 1 beats stage 2);
- with the uniform and with the bimodal mix, stage 2 beats stage 1;
- bimodal's stage 2 beats no-mix's and uniform's stage 2;
- no-mix's stage 1 beats uniform's stage 1 (a uniform mix costs the drafter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_claims import cells, judge_pair
from dind.eval.reproduce_plans import ReproduceConfig, sections

LAW_NAMES = {"fixed": "no mix", "uniform": "uniform", "bimodal": "bimodal"}


def training_law(model: str) -> str | None:
    """The name of the block-size law ``model`` was trained with, or None when its checkpoint
    records no training config (a hub checkpoint, a bare export)."""
    import yaml

    from dind.shipped import shipped_path

    path = Path(model).expanduser()
    if not path.exists():
        path = shipped_path(model, "model", parameter="--model") or path
    candidates = [path / "train_config.yaml", path / "checkpoints" / "latest" / "train_config.yaml"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return None
    try:
        law = (yaml.safe_load(found.read_text()) or {}).get("objective", {}).get("block_sizes")
    except (yaml.YAMLError, AttributeError):
        return None
    name = law.get("name") if isinstance(law, dict) else law
    return name.split(":")[0] if isinstance(name, str) else None


@attrs.frozen
class CrossClaim:
    """Model ``a_law``'s plan ``a`` has lower Gen PPL than model ``b_law``'s plan ``b``."""

    text: str
    a_law: str
    a: str
    b_law: str
    b: str


def table3_claims(config: ReproduceConfig) -> list[CrossClaim]:
    table1 = sections(config)["table1"]
    d, refine = table1[0], table1[3]
    return [
        CrossClaim(
            "Table 3: without a mix, the stage-1 draft beats its refinement", "fixed", d, "fixed", refine
        ),
        CrossClaim("Table 3: with the uniform mix, stage 2 beats stage 1", "uniform", refine, "uniform", d),
        CrossClaim("Table 3: with the bimodal mix, stage 2 beats stage 1", "bimodal", refine, "bimodal", d),
        CrossClaim("Table 3: bimodal's stage 2 beats no mix's", "bimodal", refine, "fixed", refine),
        CrossClaim("Table 3: bimodal's stage 2 beats uniform's", "bimodal", refine, "uniform", refine),
        CrossClaim("Table 3: no mix's stage 1 beats uniform's", "fixed", d, "uniform", d),
    ]


def models_by_law(config: ReproduceConfig, laws: Mapping[str, str | None]) -> dict[str, str]:
    """law -> model, for the laws exactly one of ``config.models`` was trained with."""
    found: dict[str, list[str]] = {}
    for model in config.models:
        law = laws.get(model)
        if law is not None:
            found.setdefault(law, []).append(model)
    return {law: models[0] for law, models in found.items() if len(models) == 1}


def judge_table3(
    records: Sequence[dict[str, Any]],
    config: ReproduceConfig,
    judges: Sequence[str],
    laws: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    """Per (claim, judge) that this run's models can test: the paired difference a - b over
    seeds, its outcome by the rule and the entropy difference (a win with lower entropy is flagged)."""
    table, by_law = cells(records, judges), models_by_law(config, laws)
    results = []
    for claim in table3_claims(config):
        if claim.a_law not in by_law or claim.b_law not in by_law:
            continue
        a = table.get((by_law[claim.a_law], claim.a))
        b = table.get((by_law[claim.b_law], claim.b))
        if a is None or b is None:
            continue
        found = {"claim": claim, "a_model": by_law[claim.a_law], "b_model": by_law[claim.b_law]}
        results += [{**found, **item} for item in judge_pair(a, b, judges)]
    return results


def markdown_lines(
    by_key: Mapping[tuple[str, str], dict[str, Any]],
    records: Sequence[dict[str, Any]],
    config: ReproduceConfig,
    judges: Sequence[str],
    *,
    fmt: Callable[..., str],
) -> list[str]:
    """The report's Table 3 section: each model's stage 1 and stage 2, then the claims by the rule."""
    d, refine = sections(config)["table1"][0], sections(config)["table1"][3]
    laws = {model: training_law(model) for model in config.models}
    lines = [
        "## Table 3 analogue: the training mixes",
        "",
        "Each model's block-size law is read from its training config (`train_config.yaml`); "
        "stage 2 - stage 1 is paired over samples (same drafts).",
        "",
        f"| model | law | judge | stage 1 (`{d}`) | stage 2 (`{refine}`) | stage 2 - stage 1 |",
        "|---|---|---|---|---|---|",
    ]
    for model in config.models:
        first, second = by_key.get((model, d)), by_key.get((model, refine))
        if not (first and second):
            continue
        law = LAW_NAMES.get(laws[model] or "", laws[model] or "not recorded")
        for judge in judges:
            lines.append(
                f"| {model} | {law} | {judge} | {fmt(first[f'gen_ppl[{judge}]'])} ± "
                f"{fmt(first[f'se[{judge}]'])} | {fmt(second[f'gen_ppl[{judge}]'])} ± "
                f"{fmt(second[f'se[{judge}]'])} | {fmt(second.get(f'diff[{judge}]', 'n/a'))} |"
            )
    judged = judge_table3(records, config, judges, laws)
    lines += [
        "",
        "The paper's Table 3 orderings, by the rule. Across models a - b is paired over seeds "
        "(sample i of every model has the same seed; the models' drafts differ). A claim is tested "
        "only when exactly one model has each law it names.",
        "",
    ]
    if not judged:
        return [*lines, "No Table 3 ordering is testable with these models' laws.", ""]
    lines += [
        "| claim | a | b | judge | Gen PPL a - b | entropy a - b | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in judged:
        claim = item["claim"]
        lines.append(
            f"| {claim.text} | {Path(item['a_model']).name} `{claim.a}` | {Path(item['b_model']).name} "
            f"`{claim.b}` | {item['judge']} | {fmt(item['diff'])} | {fmt(item['entropy_diff'], 3)} | "
            f"**{item['outcome']}** |"
        )
    return [*lines, ""]
