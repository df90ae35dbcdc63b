"""PAPER Table 1's long row at small scale: sampling at twice the model's context, with and without windows.

For each model (context C = its ``model_length``) at length ``LONG_FACTOR * C``, two plans, the
stage-1 draft ``D`` and DiD ``D -> L@r/32{unmasking=ancestral}`` (32 ancestral steps per window:
first-hitting at 2C is too slow for a CPU run; benchmarks/results/refine-cpu.md finds ancestral /32
no different from it at 256), each run two ways on the same seeds:

- ``window``: dind's default beyond the context (``dind.sampling.windows``): every block attends to
  at most C positions (BD3-LM's rule), refinement in windows of C moving by C // 2;
- ``no_window``: the same weights declared with a ``LONG_FACTOR * C`` context
  (``dind.load(..., model_length=...)``), so every forward attends over up to twice the positions
  the model was trained on: what a sampler without windows does.

Samples are kept in ``samples-long/<model>#<way>/<plan>.jsonl`` (reused by a rerun, like the main
sections'); every judge scores them; ``long_section`` writes the report's section, with the paired
verdicts (``dind.eval.verdicts.RULE``): does the window help, and does refinement still beat the
draft at 2C?
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_claims import judge_label
from dind.eval.reproduce_plans import ReproduceConfig
from dind.eval.reproduce_samples import SampleStore
from dind.eval.verdicts import PairedDifference, mean_se

LONG_FACTOR = 2
WAYS = ("window", "no_window")
SAMPLES_DIR = "samples-long"


def long_plans(config: ReproduceConfig) -> tuple[str, str]:
    d = config.draft_block_size
    return (f"{d}", f"{d} -> L@{config.ratio:g}/32{{unmasking=ancestral}}")


def _model(model_dir: str, way: str, device: str) -> tuple[Any, int]:
    """The model for ``way`` and the length of the long row (``LONG_FACTOR`` times its context)."""
    import torch

    from dind.models.loading import load

    model = load(model_dir, device=torch.device(device))
    length = LONG_FACTOR * model.model_length
    if way == "no_window":
        model = load(model_dir, device=torch.device(device), model_length=length)
    return model, length


def generate_long(config: ReproduceConfig, out: Path, *, progress: bool = False) -> list[dict[str, Any]]:
    """Every (model, way, plan) sample of the long row, generated where missing; their records."""
    from dind.data.tokenizers import tokenizer_for_model
    from dind.eval import reproduce_batches as batches
    from dind.sampling import GenerateOptions
    from dind.sampling.windows import WindowWarning

    plans, records = long_plans(config), []
    for model_dir in config.models:
        for way in WAYS:
            model, length = _model(model_dir, way, config.device)
            store = SampleStore(out / SAMPLES_DIR, {"length": length, "seed": config.seed})
            name, tokenizer = tokenizer_for_model(model)
            options = GenerateOptions(bos_id=tokenizer.eos_id)
            at = attrs.evolve(config, length=length)
            key = f"{model_dir}#{way}"
            for start in range(0, config.num_samples, config.batch_size):
                count = min(config.batch_size, config.num_samples - start)
                if all(store.has(key, plan, start, count) for plan in plans):
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", WindowWarning)  # the way says so
                    draft = batches.Draft(*batches.generate_batch(model, plans[0], start, count, at, options))
                    for plan in plans:
                        batch = batches.batch_samples(
                            model, plan, start, count, at, tokenizer, options, draft
                        )
                        extra = {"model": model_dir, "way": way, "tokenizer": name, "length": length}
                        store.append(key, plan, [{**r, **extra, "settings": store.settings} for r in batch])
                if progress:
                    print(f"{model_dir} | long row, {way} | samples {start}..{start + count - 1}", flush=True)
            records += [
                dict(record)
                for plan in plans
                for index, record in sorted(store.samples(key, plan).items())
                if index < config.num_samples
            ]
    return records


def score_long(config: ReproduceConfig, records: list[dict[str, Any]], *, progress: bool = False) -> None:
    """Every judge's Gen PPL of every long-row sample, and its entropy (in place)."""
    from dind.data.tokenizers import TOKENIZERS
    from dind.eval.entropy import unigram_entropy
    from dind.eval.judge import load_judge
    from dind.eval.reproduce_batches import score_rows

    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        record["entropy"] = unigram_entropy(record["tokens"][1:])
        record["gen_ppl"] = {}
        groups[(record["tokenizer"], record["length"])].append(record)
    for path in config.judges:
        judge = load_judge(path, device=config.device)
        for (tokenizer_name, length), group in groups.items():
            tokenizer = TOKENIZERS.build(tokenizer_name)
            scores = score_rows(judge, [r["tokens"] for r in group], tokenizer, length, progress)
            for record, ppl in zip(group, scores, strict=True):
                record["gen_ppl"][judge_label(path)] = ppl


def _by_sample(records, model: str, way: str, plan: str, value) -> dict[int, float]:
    return {r["sample"]: value(r) for r in records if (r["model"], r["way"], r["plan"]) == (model, way, plan)}


def _cell(values: dict[int, float], digits: int = 2) -> str:
    mean, se = mean_se(list(values.values()))
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def long_section(records: list[dict[str, Any]], config: ReproduceConfig) -> list[str]:
    """The report's markdown lines for the long row: a table per model and the paired verdicts."""
    judges = [judge_label(j) for j in config.judges]
    stage1, did = long_plans(config)
    lines = [
        "## Table 1, long row: twice the model's context, with and without windows",
        "",
        f"Each model at {LONG_FACTOR}x its context (its `model_length`), {config.num_samples} samples per "
        "cell, the same seeds everywhere. `window`: dind's default beyond the context (every forward "
        "attends to at most the context; refinement in windows of the context moving by half of it). "
        "`no_window`: the same weights declared with the longer context, attending over every position.",
        "",
    ]
    for model in config.models:
        length = next((r["length"] for r in records if r["model"] == model), None)
        lines += [
            f"### {model} at length {length}",
            "",
            "| plan | way | NFE | s/sample | " + " | ".join(f"Gen PPL {j}" for j in judges) + " | entropy |",
            "|---|---|---|---|" + "---|" * len(judges) + "---|",
        ]
        for plan in (stage1, did):
            for way in WAYS:
                chosen = [r for r in records if (r["model"], r["way"], r["plan"]) == (model, way, plan)]
                ppl = " | ".join(
                    _cell(_by_sample(records, model, way, plan, lambda r, j=j: r["gen_ppl"][j]))
                    for j in judges
                )
                entropy = _cell(_by_sample(records, model, way, plan, lambda r: r["entropy"]), 3)
                nfe = mean_se([r["nfe"] for r in chosen])[0]
                seconds = mean_se([r["seconds"] for r in chosen])[0]
                lines.append(f"| `{plan}` | {way} | {nfe:.0f} | {seconds:.2f} | {ppl} | {entropy} |")
        comparisons = [
            ("window - no window, stage 1", (stage1, "window"), (stage1, "no_window")),
            ("window - no window, DiD", (did, "window"), (did, "no_window")),
            ("DiD - stage 1, window", (did, "window"), (stage1, "window")),
            ("DiD - stage 1, no window", (did, "no_window"), (stage1, "no_window")),
        ]
        lines += [
            "",
            "| paired difference | " + " | ".join(judges) + " | entropy |",
            "|---|" + "---|" * len(judges) + "---|",
        ]
        verdicts = {}
        for text, (plan_a, way_a), (plan_b, way_b) in comparisons:
            cells = []
            for judge in [*judges, None]:
                value = (lambda r: r["entropy"]) if judge is None else (lambda r, j=judge: r["gen_ppl"][j])
                a = _by_sample(records, model, way_a, plan_a, value)
                b = _by_sample(records, model, way_b, plan_b, value)
                difference = PairedDifference.of(a, b)
                cells.append(str(difference))
                verdicts[(text, judge)] = difference.verdict()
            lines.append(f"| {text} | " + " | ".join(cells) + " |")
        helps = [
            f"{what} under {judge}: {_helps(verdicts[(text, judge)])}"
            for text, what in (("window - no window, stage 1", "stage 1"), ("window - no window, DiD", "DiD"))
            for judge in judges
        ]
        question = "Does the window help (lower Gen PPL than without, by the rule)? "
        lines += ["", question + "; ".join(helps), ""]
    return lines


def _helps(verdict: str) -> str:
    return {"lower": "yes", "higher": "no, it hurts", "no difference": "no difference"}.get(verdict, verdict)
