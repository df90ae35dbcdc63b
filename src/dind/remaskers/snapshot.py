"""Snapshot remasking: the positions with the lowest tracked confidence go back to MASK (PAPER Eq. 6)."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.remaskers.base import REMASKERS, lowest_k, remask_counts


@REMASKERS.register("snapshot")
@attrs.frozen
class SnapshotRemasker:
    def select(
        self,
        tokens: Tensor,
        scores: Tensor,
        eligible: Tensor,
        ratio: float,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return lowest_k(scores, eligible, remask_counts(eligible, ratio), generator)
