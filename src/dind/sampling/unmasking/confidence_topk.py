"""LLaDA's low-confidence rule: reveal the k most confident masked positions per step.

k = ceil(remaining / steps_left), per row, so a row with m masked positions finishes exactly at
the end of the step budget (or after m steps when the budget exceeds m). Ties in confidence are
broken by position order (lowest position first) through a stable sort.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
from torch import Tensor

from dind.sampling.unmasking.base import UNMASKING_RULES, steps_left


@UNMASKING_RULES.register("confidence_topk")
@attrs.frozen
class ConfidenceTopK:
    uses_confidence: ClassVar[bool] = True
    may_skip_steps: ClassVar[bool] = False

    def default_steps(self, width: int) -> int:
        return width

    def select(
        self, masked: Tensor, noise: Tensor, confidence: Tensor | None, *, step: int, steps: int
    ) -> Tensor:
        if confidence is None:
            raise ValueError("confidence_topk needs confidence (got None)")
        remaining = masked.sum(dim=1, keepdim=True)
        left = steps_left(step, steps)
        k = torch.div(remaining + left - 1, left, rounding_mode="floor")
        ranked = confidence.double().masked_fill(~masked, float("-inf"))
        order = torch.sort(ranked, dim=1, descending=True, stable=True).indices
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(masked.shape[1], device=masked.device).expand_as(order)
        )
        return masked & (rank < k)
