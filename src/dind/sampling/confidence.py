"""Confidence trackers: the score a position gets at the moment it is revealed.

Trackers are stateless functions of the denoiser's distribution at reveal time. The sampler owns
the (batch, length) score tensor and updates it with ``record_reveals``; positions that are not
revealed again keep their score, across steps and across stages (PAPER Eq. 5).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.registry import Registry


@runtime_checkable
class ConfidenceTracker(Protocol):
    """``reveal_scores(probs, tokens)``: probs (batch, width, vocab) float, the denoiser's
    distribution when the positions are revealed (MASK has zero mass); tokens (batch, width) the
    tokens chosen -> (batch, width) float scores. Higher means more confident."""

    def reveal_scores(self, probs: Tensor, tokens: Tensor) -> Tensor: ...


CONFIDENCE_TRACKERS: Registry[ConfidenceTracker] = Registry(
    "confidence_trackers", entry_point_group="dind.confidence_trackers"
)


def initial_scores(
    batch: int, length: int, *, frozen: Tensor | None = None, device: torch.device | str | None = None
) -> Tensor:
    """(batch, length) float32 zeros, +inf on frozen positions so they are never the least confident."""
    scores = torch.zeros(batch, length, device=device)
    if frozen is not None:
        scores = scores.masked_fill(frozen.to(scores.device).expand(batch, length), float("inf"))
    return scores


def record_reveals(scores: Tensor, revealed: Tensor, new_scores: Tensor) -> Tensor:
    """Scores of revealed positions replaced by ``new_scores``; every other position keeps its score."""
    return torch.where(revealed, new_scores.to(scores.dtype), scores)


@CONFIDENCE_TRACKERS.register("snapshot")
@attrs.frozen
class SnapshotConfidence:
    """The probability the denoiser gave the chosen token when it revealed it (PAPER Eq. 5)."""

    def reveal_scores(self, probs: Tensor, tokens: Tensor) -> Tensor:
        return probs.gather(-1, tokens[..., None]).squeeze(-1).float()


@CONFIDENCE_TRACKERS.register("margin")
@attrs.frozen
class MarginConfidence:
    """Top-1 minus top-2 probability at reveal time (how decisive the choice was)."""

    def reveal_scores(self, probs: Tensor, tokens: Tensor) -> Tensor:
        top = probs.topk(2, dim=-1).values.float()
        return top[..., 0] - top[..., 1]


@CONFIDENCE_TRACKERS.register("negentropy")
@attrs.frozen
class NegEntropyConfidence:
    """Minus the entropy (nats) of the distribution at reveal time."""

    def reveal_scores(self, probs: Tensor, tokens: Tensor) -> Tensor:
        p = probs.double()
        return (p * torch.log(p.clamp_min(1e-300))).sum(-1).float()
