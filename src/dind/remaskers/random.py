"""Random remasking: a uniformly random subset of the eligible positions (PAPER Table 2 baseline)."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.remaskers.base import REMASKERS, RemaskContext


@REMASKERS.register("random")
@attrs.frozen
class RandomRemasker:
    """Keys all equal: the sampler's random tie-break makes the subset uniform."""

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        return torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
