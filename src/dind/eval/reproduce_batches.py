"""One batch of ``dind reproduce``'s work: a plan's samples for a batch of seeds (sharing the
batch's stage-1 draft) and their scores under a judge; used by the main sections
(``dind.eval.reproduce``) and the long row (``dind.eval.reproduce_long``)."""

from __future__ import annotations

import time
from typing import Any

import attrs

from dind.eval.reproduce_samples import _digest


def generate_batch(model: Any, plan_text: str, start: int, count: int, config, options) -> tuple[Any, float]:
    import torch

    from dind.eval.sweep import sample_seeds
    from dind.sampling import multistage
    from dind.sampling.plan import StagePlan

    began = time.perf_counter()
    with torch.no_grad():
        result = multistage.generate(
            model,
            StagePlan.parse(plan_text),
            length=config.length,
            batch_size=count,
            seed=sample_seeds(config.seed, start, count),
            options=options,
        )
    return result, time.perf_counter() - began


@attrs.frozen
class Draft:
    """One batch's stage-1 draft (the baseline plan's result) and its time."""

    result: Any
    wall_time_s: float


def batch_samples(
    model, plan_text, start, count, config, tokenizer, options, draft: Draft | None = None
) -> list[dict[str, Any]]:
    """One (plan, batch)'s sample records. With ``draft``: the baseline plan is the draft itself and
    a plan that starts with its stage runs only its later stages from it (``continue_plan``, the
    same tokens as a full run); its NFEs and time still include the draft's (the plan's own cost)."""
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
        result, wall = generate_batch(model, plan_text, start, count, config, options)
    stage1_wall = draft.wall_time_s if draft is not None else result.trace[0].wall_time_s
    finals = result.tokens.cpu().tolist()
    drafts = result.trace[0].tokens.cpu().tolist()
    nfe, scorer_nfe = result.nfe.cpu().tolist(), result.scorer_nfe.cpu().tolist()
    return [
        {
            "plan": plan_text,
            "sample": start + offset,
            "seed": result.seeds[offset],
            "tokens": finals[offset],
            "text": tokenizer.decode(finals[offset]),
            "stage1_digest": _digest(drafts[offset]),
            "nfe": nfe[offset],  # every stage's model NFEs, the shared draft's included
            "scorer_nfe": scorer_nfe[offset],  # post-hoc remaskers' scoring forwards
            "seconds": wall / count,  # the plan's cost as if run alone, per sample of the batch
            "stage1_seconds": stage1_wall / count,
            "shared_draft": draft is not None,
            "batch_start": start,
            "batch_count": count,
        }
        for offset in range(count)
    ]


def score_rows(judge: Any, rows: list[list[int]], tokenizer: Any, length: int, progress: bool) -> list[float]:
    """Byte model + byte judge: ids scored exactly; otherwise decoded text, retokenised by the judge."""
    from dind.eval.byte_judge import is_byte_judge
    from dind.eval.report import decode_for_judge, evaluate

    if tokenizer.mask_id == 257 and is_byte_judge(judge):
        return evaluate(judge, [""] * len(rows), tokens=rows, byte_tokens=True, progress=progress)[
            "sample_ppl"
        ]
    eos_text = judge.tokenizer.eos_token
    texts = [
        decode_for_judge(tokenizer.decode, row, eos_id=tokenizer.eos_id, eos_text=eos_text) for row in rows
    ]
    return evaluate(judge, texts, tokens=[row[1:] for row in rows], max_length=length, progress=progress)[
        "sample_ppl"
    ]
