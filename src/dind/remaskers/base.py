"""The Remasker protocol and the shared lowest-k selection."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from dind.registry import Registry


@runtime_checkable
class Remasker(Protocol):
    """Chooses which positions of a finished draft go back to MASK before the next stage.

    ``select(tokens, scores, eligible, ratio, generator=)``: tokens (batch, length) long; scores
    (batch, length) float, the tracker's (higher = more confident); eligible (batch, length) bool
    (not frozen, not already masked) -> (batch, length) bool with exactly
    floor(ratio * eligible[row].sum()) True entries per row, all eligible. Deterministic given the
    generator."""

    def select(
        self,
        tokens: Tensor,
        scores: Tensor,
        eligible: Tensor,
        ratio: float,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor: ...


REMASKERS: Registry[Remasker] = Registry("remaskers", entry_point_group="dind.remaskers")


def remask_counts(eligible: Tensor, ratio: float) -> Tensor:
    """(batch,) long: floor(ratio * n_eligible) per row, the floor of the float64 product (as
    ``math.floor(ratio * n)``: 0.29 of 100 positions is 28, since 0.29 * 100 = 28.999...)."""
    if not 0.0 <= ratio <= 1.0 or math.isnan(ratio):
        raise ValueError(f"ratio must be in [0, 1] (got {ratio})")
    n = eligible.sum(dim=1)
    counts = torch.floor(n.double() * ratio).long()
    return torch.minimum(counts, n)


def lowest_k(
    scores: Tensor, eligible: Tensor, counts: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """(batch, length) bool: per row the ``counts[row]`` eligible positions with the lowest scores.
    Ties are broken uniformly at random (a random permutation, then a stable sort)."""
    if scores.shape != eligible.shape:
        raise ValueError(
            f"scores and eligible must have one shape (got {tuple(scores.shape)}, {tuple(eligible.shape)})"
        )
    batch, length = scores.shape
    # the keys are drawn where the generator lives (a CUDA generator cannot fill a CPU tensor)
    device = generator.device if generator is not None else scores.device
    keys = torch.rand(batch, length, generator=generator, device=device).argsort(dim=1).to(scores.device)
    shuffled = scores.double().gather(1, keys).masked_fill(~eligible.gather(1, keys), float("inf"))
    order = keys.gather(1, shuffled.argsort(dim=1, stable=True))
    chosen_sorted = torch.arange(length, device=scores.device)[None, :] < counts[:, None]
    return torch.zeros_like(eligible).scatter(1, order, chosen_sorted) & eligible
