"""``dind reproduce``: PAPER Tables 1-3 and Figure 2 analogues for checkpoints and a judge.

``run(config) -> Report``. For each model and each batch of samples (sample i's seed is
``row_seed(seed, i)`` whatever the batch), every plan of ``reproduce_plans.sections`` is run,
scored by the judge (final and stage-1 draft), and appended to ``results.jsonl`` as one record
per (model, plan, batch): a killed run resumes at the next (plan, batch) (a torn last line is redone).

Shared drafts: every plan that starts with the baseline's stage ``D`` has the baseline's stage-1
draft (same stage, same seeds). It is computed and judged once per (model, batch) and kept in
memory; those plans run only their later stages from it (``multistage.continue_plan``: exactly
the tokens of a full run). A resumed batch recomputes its draft once. Accounting: a record's
``nfe`` and ``wall_time_s`` are the plan's own cost as if run alone (the draft's NFEs and time
included, ``stage1_wall_time_s`` names the draft's part); the run's wall time counts it once.
``share_drafts=False`` runs every plan from scratch (same tokens, for checking).
``reproduce_report`` then writes results.csv, report.md and the plots. Outputs other than
results.jsonl are checked before any work and need ``overwrite`` to be replaced.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_plans import ReproduceConfig, all_plans
from dind.eval.resumable import append_jsonl, read_jsonl_resumable

OUTPUTS = ("results.csv", "report.md", "figure2.png")


@attrs.frozen
class Report:
    """What a reproduce run produced: its records, the summary rows and the files written."""

    records: tuple[dict[str, Any], ...]
    rows: tuple[dict[str, Any], ...]
    files: tuple[Path, ...]
    wall_time_s: float


def _digest(row: list[int]) -> str:
    return hashlib.blake2b(str(row).encode(), digest_size=8).hexdigest()


def _settings(config: ReproduceConfig) -> dict[str, Any]:
    keys = ("judge", "length", "num_samples", "seed", "draft_block_size", "ratio", "quick")
    return {key: getattr(config, key) for key in keys}


def _score(judge: Any, rows: list[list[int]], tokenizer: Any, length: int) -> dict[str, Any]:
    """Byte model + byte judge: ids scored exactly; otherwise decoded text, retokenised by the judge."""
    from dind.eval.byte_judge import is_byte_judge
    from dind.eval.report import decode_for_judge, evaluate

    if tokenizer.mask_id == 257 and is_byte_judge(judge):
        return evaluate(judge, [""] * len(rows), tokens=rows, byte_tokens=True)
    eos_text = judge.tokenizer.eos_token
    texts = [
        decode_for_judge(tokenizer.decode, row, eos_id=tokenizer.eos_id, eos_text=eos_text) for row in rows
    ]
    return evaluate(judge, texts, tokens=[row[1:] for row in rows], max_length=length)


@attrs.frozen
class _Draft:
    """One batch's stage-1 draft (the baseline plan's result), its judge scores, digests and time."""

    result: Any
    wall_time_s: float
    score: dict[str, Any]
    digests: list[str]


def shares_draft(plan_text: str, baseline: str) -> bool:
    """Whether ``plan_text`` starts with the baseline's (single) stage, so its stage 1 is the draft."""
    from dind.sampling.plan import StagePlan

    return StagePlan.parse(plan_text).stages[0] == StagePlan.parse(baseline).stages[0]


def _generate(model: Any, plan_text: str, start: int, count: int, config, options) -> tuple[Any, float]:
    import torch

    from dind.eval.sweep import sample_seeds
    from dind.sampling import multistage
    from dind.sampling.plan import StagePlan

    began = time.perf_counter()
    with torch.no_grad():
        result = multistage.generate(
            model, StagePlan.parse(plan_text), length=config.length, batch_size=count,
            seed=sample_seeds(config.seed, start, count), options=options,
        )  # fmt: skip
    return result, time.perf_counter() - began


def _draft(model: Any, judge: Any, start: int, count: int, config, tokenizer, options) -> _Draft:
    """The baseline plan's samples start..start+count-1: computed once, shared by the plans on it."""
    result, wall = _generate(model, str(config.draft_block_size), start, count, config, options)
    rows = result.tokens.cpu().tolist()
    return _Draft(result, wall, _score(judge, rows, tokenizer, config.length), [_digest(r) for r in rows])


def _batch_record(
    model, judge, plan_text, start, count, config, tokenizer, options, draft: _Draft | None = None
):
    """One (plan, batch) record. With ``draft``: the baseline plan is the draft itself and a plan
    that starts with its stage runs only its later stages from it (``continue_plan``, the same
    tokens as a full run); its NFEs and wall time still include the draft's (the plan's own cost)."""
    import torch

    from dind.sampling import multistage
    from dind.sampling.plan import StagePlan

    if draft is not None and plan_text == str(config.draft_block_size):
        result, wall = draft.result, draft.wall_time_s
    elif draft is not None:
        began = time.perf_counter()
        with torch.no_grad():
            result = multistage.continue_plan(
                model, StagePlan.parse(plan_text), draft.result, options=options
            )
        wall = draft.wall_time_s + time.perf_counter() - began
    else:
        result, wall = _generate(model, plan_text, start, count, config, options)
    finals = result.tokens.cpu().tolist()
    if draft is not None:
        final = draft.score if result is draft.result else _score(judge, finals, tokenizer, config.length)
        stage1, digests, stage1_wall = draft.score, draft.digests, draft.wall_time_s
    else:
        drafts = result.trace[0].tokens.cpu().tolist()
        final, stage1 = (_score(judge, rows, tokenizer, config.length) for rows in (finals, drafts))
        digests, stage1_wall = [_digest(row) for row in drafts], result.trace[0].wall_time_s
    return {
        "plan": plan_text,
        "start": start,
        "count": count,
        "sample_ppl": final["sample_ppl"],
        "sample_entropy": final["sample_entropy"],
        "stage1_ppl": stage1["sample_ppl"],
        "stage1_digest": digests,
        "nfe": result.nfe.cpu().tolist(),  # every stage's, the shared draft's included
        "wall_time_s": wall,  # the plan's cost as if run alone: the shared draft's time included
        "stage1_wall_time_s": stage1_wall,
        "shared_draft": draft is not None,
        "example": tokenizer.decode(finals[0])[:160],
    }


def _check_outputs(config: ReproduceConfig) -> Path:
    from dind.outputs import check_output

    out = Path(config.out)
    for name in OUTPUTS:
        check_output(out / name, overwrite=config.overwrite, option="--out")
    return out


def _resumed(results: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    records = read_jsonl_resumable(results)
    for record in records:
        if record["settings"] != settings:
            raise ValueError(
                f"{results} holds a run with other settings (got {record['settings']}, now {settings}); "
                "use another --out or the same settings"
            )
    return records


def run(config: ReproduceConfig, *, progress: bool = False) -> Report:
    """Run (or resume) every plan for every model; write results.jsonl, CSV, report and plots."""
    import torch

    from dind.data.tokenizers import tokenizer_for_model
    from dind.eval.judge import load_judge
    from dind.eval.reproduce_report import write_report
    from dind.models import DECODE_STEPS
    from dind.models.loading import load
    from dind.sampling import GenerateOptions
    from dind.sampling.plan import StagePlan

    out = _check_outputs(config)  # before any model loads or sample is drawn
    plans = all_plans(config)
    for text in plans:
        StagePlan.parse(text).validate(config.length, prompt_length=1)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    settings = _settings(config)
    records = _resumed(results, settings)
    done = {(r["model"], r["plan"], r["start"]) for r in records}
    baseline = str(config.draft_block_size)
    judge = load_judge(config.judge, device=config.device)
    began, machine = time.perf_counter(), machine_line()
    step = DECODE_STEPS.build(config.step_mode)  # one object: its graphs and caches are reused
    for model_dir in config.models:
        model = load(model_dir, device=torch.device(config.device))
        _, tokenizer = tokenizer_for_model(model)
        options = GenerateOptions(bos_id=tokenizer.eos_id, step=step)
        for start in range(0, config.num_samples, config.batch_size):
            count = min(config.batch_size, config.num_samples - start)
            todo = [text for text in plans if (model_dir, text, start) not in done]
            draft = None  # the batch's stage-1 draft: computed once, for the first plan that needs it
            for text in todo:
                if config.share_drafts and draft is None and shares_draft(text, baseline):
                    draft = _draft(model, judge, start, count, config, tokenizer, options)
                    if progress:
                        print(f"{model_dir} | shared stage-1 draft {baseline} | samples {start}.."
                              f"{start + count - 1} | {draft.wall_time_s:.1f}s", flush=True)  # fmt: skip
                shared = draft if shares_draft(text, baseline) else None
                record = _batch_record(model, judge, text, start, count, config, tokenizer, options, shared)
                record = {"model": model_dir, **record, "step_mode": config.step_mode, "settings": settings}
                append_jsonl(results, record)
                records.append(record)
                if progress:
                    print(f"{model_dir} | {text} | samples {start}..{start + count - 1} "
                          f"| {record['wall_time_s']:.1f}s", flush=True)  # fmt: skip
    elapsed = time.perf_counter() - began
    rows, files = write_report(
        records, config, out, elapsed_s=elapsed, machine=f"{machine}; {load_line()} at the end"
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

    return (f"{os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; {load_line()} at the start")  # fmt: skip
