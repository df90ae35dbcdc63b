"""``dind reproduce``: PAPER Tables 1-3 and Figure 2 analogues for checkpoints and judges.

``run(config) -> Report`` works in two phases.

Generate: for each model and each batch of samples (sample i's seed is ``row_seed(seed, i)``
whatever the batch), every plan of ``reproduce_plans.sections`` that has no samples yet for the
batch is run, and its samples are appended to ``samples/<model>/<plan>.jsonl`` under ``out``:
one line per sample with its seed, tokens, text, model NFE and scorer NFE (the post-hoc
remaskers' scoring forwards), time and stage-1 digest. These files are what ``dind eval`` reads,
so any judge can rescore a run; a rerun (more samples, other judges, a killed run) reuses every
complete batch and redoes the rest (a torn last line is dropped).

Shared drafts: every plan that starts with the baseline's stage ``D`` has the baseline's stage-1
draft (same stage, same seeds). It is computed once per (model, batch) and kept in memory; those
plans run only their later stages from it (``multistage.continue_plan``: exactly the tokens of a
full run). Accounting: a sample's ``nfe`` and ``seconds`` are the plan's own cost as if run alone
(the draft's NFEs and time included, ``stage1_seconds`` names the draft's part).
``share_drafts=False`` runs every plan from scratch (same tokens, for checking).

Score: every judge in ``config.judges`` scores every sample (first ``num_samples`` of each plan);
``reproduce_report`` then writes results.csv, report.md (verdicts computed by
``dind.eval.verdicts.RULE``) and the plots. Report files are checked before any work and need
``overwrite`` to be replaced; samples are never overwritten.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs

from dind.eval import reproduce_batches
from dind.eval.reproduce_claims import judge_label
from dind.eval.reproduce_plans import ReproduceConfig, all_plans
from dind.eval.reproduce_samples import SampleStore, _digest, generation_settings, slug  # noqa: F401

OUTPUTS = ("results.csv", "report.md", "figure2.png", "genppl_vs_entropy.png")
SAMPLES_DIR = "samples"


@attrs.frozen
class Report:
    """What a reproduce run produced: its sample records, the summary rows and the files written."""

    records: tuple[dict[str, Any], ...]
    rows: tuple[dict[str, Any], ...]
    files: tuple[Path, ...]
    wall_time_s: float


def shares_draft(plan_text: str, baseline: str) -> bool:
    """Whether ``plan_text`` starts with the baseline's (single) stage, so its stage 1 is the draft."""
    from dind.sampling.plan import StagePlan

    return StagePlan.parse(plan_text).stages[0] == StagePlan.parse(baseline).stages[0]


def _check_outputs(config: ReproduceConfig) -> Path:
    from dind.outputs import check_output

    out = Path(config.out)
    for name in OUTPUTS:
        check_output(out / name, overwrite=config.overwrite, option="--out")
    return out


def generate_samples(config: ReproduceConfig, store: SampleStore, *, progress: bool = False) -> float:
    """Every (model, plan, batch) without samples yet; returns the seconds spent."""
    import torch

    from dind.data.tokenizers import tokenizer_for_model
    from dind.models import DECODE_STEPS
    from dind.models.loading import load
    from dind.sampling import GenerateOptions

    began = time.perf_counter()
    plans = all_plans(config)
    baseline = str(config.draft_block_size)
    step = DECODE_STEPS.build(config.step_mode)  # one object: its graphs and caches are reused
    for model_dir in config.models:
        batches = [
            (start, min(config.batch_size, config.num_samples - start))
            for start in range(0, config.num_samples, config.batch_size)
        ]
        todo = {b: [p for p in plans if not store.has(model_dir, p, *b)] for b in batches}
        if not any(todo.values()):
            continue
        model = load(model_dir, device=torch.device(config.device))
        name, tokenizer = tokenizer_for_model(model)
        options = GenerateOptions(bos_id=tokenizer.eos_id, step=step)
        for (start, count), texts in todo.items():
            draft = None  # the batch's stage-1 draft: computed once, for the first plan that needs it
            for text in texts:
                if config.share_drafts and draft is None and shares_draft(text, baseline):
                    made = reproduce_batches.generate_batch(model, baseline, start, count, config, options)
                    draft = reproduce_batches.Draft(*made)
                    if progress:  # the lines' own seconds add up to the elapsed wall-clock time
                        print(
                            f"{model_dir} | shared stage-1 draft {baseline} | samples {start}.."
                            f"{start + count - 1} | {draft.wall_time_s:.1f}s | elapsed "
                            f"{time.perf_counter() - began:.0f}s",
                            flush=True,
                        )
                shared = draft if shares_draft(text, baseline) else None
                records = reproduce_batches.batch_samples(
                    model, text, start, count, config, tokenizer, options, shared
                )
                extra = {"step_mode": config.step_mode, "tokenizer": name, "settings": store.settings}
                records = [{**r, "model": model_dir, **extra} for r in records]
                store.append(model_dir, text, records)
                if progress:  # its own time: the shared draft's was printed on its own line
                    seconds = sum(r["seconds"] for r in records)
                    own = seconds - (shared.wall_time_s if shared is not None else 0.0)
                    print(
                        f"{model_dir} | {text} | samples {start}..{start + count - 1} | {own:.1f}s"
                        + (f" (+ the shared draft: {seconds:.1f}s as a plan)" if shared is not None else "")
                        + f" | elapsed {time.perf_counter() - began:.0f}s",
                        flush=True,
                    )
    return time.perf_counter() - began


def score_samples(
    config: ReproduceConfig, store: SampleStore, *, progress: bool = False
) -> list[dict[str, Any]]:
    """The first ``num_samples`` of every (model, plan), each with its per-judge Gen PPL, entropy
    and 4-gram repetition (over the generated tokens, BOS excluded)."""
    from dind.data.tokenizers import TOKENIZERS
    from dind.eval.entropy import repeated_ngram_rate, unigram_entropy
    from dind.eval.judge import load_judge

    records = []
    for model_dir in config.models:
        for plan in all_plans(config):
            held = store.samples(model_dir, plan)
            records += [dict(held[i]) for i in range(config.num_samples) if i in held]
    for record in records:
        body = record["tokens"][1:]
        record["entropy"] = unigram_entropy(body)
        record["repetition_4gram"] = repeated_ngram_rate(body, 4)
        record["gen_ppl"] = {}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["tokenizer"]].append(record)
    for path in config.judges:
        judge = load_judge(path, device=config.device)
        for tokenizer_name, group in groups.items():
            tokenizer = TOKENIZERS.build(tokenizer_name)
            rows = [r["tokens"] for r in group]
            scores = reproduce_batches.score_rows(judge, rows, tokenizer, config.length, progress)
            for record, ppl in zip(group, scores, strict=True):
                record["gen_ppl"][judge_label(path)] = ppl
    return records


def run(config: ReproduceConfig, *, progress: bool = False) -> Report:
    """Generate what is missing, score every sample with every judge, write the report and plots.
    The outputs stay locked until it returns: a second run writing to ``out`` at once is refused."""
    from dind.locks import output_locks

    with output_locks():
        return _run(config, progress=progress)


def _run(config: ReproduceConfig, *, progress: bool) -> Report:
    from dind.eval.reproduce_report import write_report
    from dind.sampling.plan import StagePlan

    out = _check_outputs(config)  # before any model loads or sample is drawn
    for text in all_plans(config):
        StagePlan.parse(text).validate(config.length, prompt_length=1)
    began, machine = time.perf_counter(), machine_line()
    store = SampleStore(out / SAMPLES_DIR, generation_settings(config))
    generate_samples(config, store, progress=progress)
    records = score_samples(config, store, progress=progress)
    more: list[str] = []
    if config.long_row:
        from dind.eval.reproduce_long import generate_long, long_section, score_long

        long_records = generate_long(config, out, progress=progress)
        score_long(config, long_records, progress=progress)
        more = long_section(long_records, config)
    elapsed = time.perf_counter() - began
    rows, files = write_report(
        records, config, out, elapsed_s=elapsed, machine=f"{machine}; {load_line()} at the end", more=more
    )
    return Report(tuple(records), tuple(rows), tuple(files), time.perf_counter() - began)


def load_line() -> str:
    import os

    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def machine_line() -> str:
    """The machine a run's times belong to: CPUs, torch threads and the load when it began."""
    import os
    import platform

    import torch

    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; {load_line()} at the start"
    )
