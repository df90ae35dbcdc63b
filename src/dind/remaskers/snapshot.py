"""Snapshot remasking: the positions with the lowest tracked confidence go back to MASK (PAPER Eq. 6)."""

from __future__ import annotations

import attrs
from torch import Tensor

from dind.remaskers.base import REMASKERS, RemaskContext


@REMASKERS.register("snapshot")
@attrs.frozen
class SnapshotRemasker:
    """Keys = the tracked scores (the confidence each token had when it was revealed)."""

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        return scores
