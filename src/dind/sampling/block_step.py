"""One unmasking step of the block sampler: which positions to reveal, the tokens proposed there
and their tracker scores, with the output layer run only at the positions sampled (see
``dind.sampling.block_sampler``), and the non-finite check of the logits it reads."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor

from dind.counter_rng import GUMBEL, RULE, RowStreams, fold
from dind.errors import NonFiniteError
from dind.models.protocol import Denoiser
from dind.sampling.confidence import ConfidenceTracker
from dind.sampling.proposal import ProposalOptions, draw_gumbel, model_probs, propose
from dind.sampling.unmasking.base import UnmaskingRule


@attrs.frozen(eq=False)  # holds tensors: compare their values, not ==
class BlockContext:
    model: Denoiser
    rule: UnmaskingRule
    tracker: ConfidenceTracker
    streams: RowStreams  # the stage's (folded with the stage index)
    steps: int | None
    proposal: ProposalOptions
    stage_index: int | None = None
    project: Callable[[Tensor], Tensor] | None = None  # features -> fp32 logits; None: logits given


def check_finite(logits: Tensor, context: BlockContext, start: int, end: int) -> None:
    """One reduction per projection (the positions a step samples): the max over the vocabulary
    is NaN if any logit is NaN, +inf if any is +inf and -inf if a position has no finite logit;
    all three would make sampling garbage (the proposal's argmax of NaNs is token 0: silently
    all-zero text)."""
    if bool(torch.isfinite(logits.amax(dim=-1)).all()):
        return
    bad = int((logits.isnan() | logits.isposinf()).sum())
    empty = int(logits.isneginf().all(dim=-1).sum())
    what = f"{bad} NaN/+inf logit values" if bad else f"{empty} positions whose logits are all -inf"
    stage = f"stage {context.stage_index}, " if context.stage_index is not None else ""
    raise NonFiniteError(
        f"the model produced non-finite logits ({stage}block [{start}, {end}): {what}); sampling stopped. "
        "Check the checkpoint's weights and the model dtype (e.g. fp16 overflow: try float32 or bfloat16)"
    )


def _checked(rule: UnmaskingRule, reveal: Tensor, masked: Tensor) -> Tensor:
    # a reveal outside the masked set would overwrite a kept or prompt token
    if bool((reveal & ~masked).any()):
        raise ValueError(f"unmasking rule {rule!r} revealed a position that is not masked")
    return reveal


def unmask_step(
    context: BlockContext,
    features: Tensor,
    masked: Tensor,
    streams: RowStreams,
    step: int,
    steps: int,
    span: tuple[int, int],
) -> tuple[Tensor, Tensor, Tensor]:
    """One unmasking step -> reveal (batch, width) bool, the revealed tokens and their tracker
    scores, both flat in row-major order of ``reveal``. ``streams``: the step's row streams;
    ``span``: the block, for errors. Rows with nothing masked get noise too (cheaper than a
    gather); no rule reveals there."""
    noise = streams.child(RULE).uniform(masked.shape[1])
    rule = context.rule
    if rule.uses_confidence:
        candidates, probs = _propose_at(context, features, masked, streams, span)
        confidence = torch.full(masked.shape, float("-inf"), device=masked.device)
        confidence[masked] = probs.gather(1, candidates[:, None]).squeeze(1)
        reveal = _checked(rule, rule.select(masked, noise, confidence, step=step, steps=steps), masked)
        chosen = reveal[masked]
        candidates, probs = candidates[chosen], probs[chosen]
    else:
        reveal = _checked(rule, rule.select(masked, noise, None, step=step, steps=steps), masked)
        candidates, probs = _propose_at(context, features, reveal, streams, span)
    revealed_scores = context.tracker.reveal_scores(probs[None], candidates[None])[0]
    return reveal, candidates, revealed_scores


def _propose_at(
    context: BlockContext, features: Tensor, where: Tensor, streams: RowStreams, span: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Proposed tokens (positions,) and the model's fp32 distribution (positions, vocab) at the
    True entries of ``where`` (batch, width), in row-major order; the output layer runs at those
    positions only. The Gumbel noise of (row r, position p) is keyed by (row r's step stream,
    GUMBEL, p): independent of the other rows."""
    rows, columns = where.nonzero(as_tuple=True)  # row-major, as features[where]
    selected = features[where]
    if context.project is not None:  # features: the output layer here, checked where it ran
        selected = context.project(selected)
        check_finite(selected, context, *span)
    keys = fold(streams.child(GUMBEL).keys[rows], columns)
    candidates = propose(
        selected,
        draw_gumbel(keys, selected.shape[-1]),
        mask_id=context.model.mask_id,
        options=context.proposal,
    )
    return candidates, model_probs(selected, context.model.mask_id)
