"""Random remasking: a uniformly random subset of the eligible positions (PAPER Table 2 baseline)."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.remaskers.base import REMASKERS, lowest_k, remask_counts


@REMASKERS.register("random")
@attrs.frozen
class RandomRemasker:
    def select(
        self,
        tokens: Tensor,
        scores: Tensor,
        eligible: Tensor,
        ratio: float,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        ties = torch.zeros(scores.shape, dtype=scores.dtype, device=scores.device)
        return lowest_k(ties, eligible, remask_counts(eligible, ratio), generator)
