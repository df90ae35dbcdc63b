"""The parts of one optimizer step that are plain functions of their inputs: the gradient
accumulation over this rank's micro-batches, the gradient clip, and the non-finite refusal."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from dind.errors import NonFiniteError
from dind.training.distributed import DistributedContext, gradient_sync
from dind.training.objective import NoiseDraw, Objective


def accumulate_gradients(
    forward: nn.Module,
    objective: Objective,
    draw: NoiseDraw,
    *,
    context: DistributedContext,
    rows: int,
    accumulation: int,
    mask_id: int,
    autocast: Any,
) -> Tensor:
    """Backward of the mean loss over this rank's ``accumulation`` micro-batches of ``rows`` rows
    (rank r's micro-step k reads rows from (k * world + r) * rows); gradients sync on the last.
    ``autocast``: a callable returning the forward's autocast context. Returns this rank's float64
    (nll sum, tokens, masked positions)."""
    totals = torch.zeros(3, dtype=torch.float64)
    for micro_step in range(accumulation):
        start = (micro_step * context.world_size + context.rank) * rows
        mine = draw.rows(slice(start, start + rows)).to(context.device)
        with gradient_sync(forward, context, micro_step == accumulation - 1):
            context_manager: AbstractContextManager = autocast()
            with context_manager:
                result = objective.loss(forward, mine, mask_id=mask_id)
            (result.loss / accumulation).backward()
        totals += torch.stack(
            [result.nll_sum.double().cpu(), torch.tensor(float(result.tokens)), result.masked.double().cpu()]
        )
    return totals


def clip_gradients(parameters: Any, limit: float | None) -> float:
    """The total gradient norm (a full tensor under FSDP), clipped to ``limit`` when given."""
    norm = torch.nn.utils.clip_grad_norm_(parameters, math.inf if limit is None else limit)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    return float(norm)


def non_finite_error(step: int, nll: float, grad_norm: float, saved_step: int | None) -> NonFiniteError:
    """The refusal of step ``step`` whose loss or gradient norm is not finite (nothing applied)."""
    saved = "none" if saved_step is None else f"step {saved_step}"
    return NonFiniteError(
        f"training stopped at step {step}: the loss is {nll} and the gradient norm {grad_norm}; the "
        f"weights of this step were not applied or saved (last save: {saved}); lower optim.lr or check "
        "the data and the model"
    )
