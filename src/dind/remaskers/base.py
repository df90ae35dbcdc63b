"""The Remasker protocol, its context, and the one batched exact-count selection.

A remasker only ranks positions: ``keys(tokens, scores, eligible, context=)`` returns a
(batch, length) float key per position, lower = sent back to MASK first. The sampler then calls
``choose_remasked`` once for the whole batch: per row, the floor(ratio * n_eligible) eligible
positions with the lowest keys, ties broken by uniform keys from that row's own counter-based
stream (``dind.counter_rng.RowStreams``: a row of a batch equals the same row sampled alone).
No remasker restates the count rule.

This package imports nothing from ``dind.sampling`` (which imports it): a remasker that needs the
model gets it through ``RemaskContext``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.counter_rng import CONTEXT, REMASK_TIES, RowStreams, as_row_streams
from dind.errors import NonFiniteError
from dind.registry import Registry

if TYPE_CHECKING:
    from dind.models.protocol import Denoiser


@attrs.define
class ForwardCounter:
    """Forward passes a remasker made to score a draft, each over the whole batch (so one NFE
    per row): ``RemaskContext.draft_probs`` counts its own; a remasker that calls another model
    adds its calls with ``add``. The sampler reports the total as the stage's scorer NFE."""

    count: int = 0

    def add(self, forwards: int = 1) -> None:
        self.count += forwards


@attrs.frozen(eq=False)
class RemaskContext:
    """What the sampler knows before a stage's remasking, for remaskers that need more than scores.

    model: the denoiser being sampled (``None`` only where no remasker needs it, e.g. unit tests).
    frozen: (batch, length) bool, prompt/BOS positions. streams: one counter-based random stream
    per row (a ``RowStreams``; a sequence of one ``torch.Generator`` per row is converted, drawing
    one seed from each); draw randomness only through ``uniform`` (row r from row r's stream).
    block_size: the stage's block size (None = global). forwards: the scoring forwards made so
    far through this context (one context per stage's remasking).
    """

    model: Denoiser | None
    frozen: Tensor
    streams: RowStreams = attrs.field(converter=as_row_streams)
    block_size: int | None = None
    forwards: ForwardCounter = attrs.field(factory=ForwardCounter)

    @property
    def batch(self) -> int:
        return self.frozen.shape[0]

    def uniform(
        self, length: int | None = None, *, stream: int = 0, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """(batch, length) uniforms in (0, 1) on the frozen mask's device, row r from row r's stream.
        A pure function of the context: the same ``stream`` gives the same draws; pass distinct
        ``stream`` ints for independent draws."""
        streams = self.streams.to(self.frozen.device).child(CONTEXT, stream)
        return streams.uniform(length or self.frozen.shape[1]).to(dtype)

    def draft_probs(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        """(batch, length, vocab) fp32: the model's distribution at every position given the whole
        draft, from one forward ``model.logits(tokens, block_size=block_size)`` (None =
        bidirectional), MASK excluded from the softmax."""
        if self.model is None:
            raise ValueError("this remasker needs the model: build RemaskContext(model=...) (got None)")
        with torch.no_grad():
            logits = self.model.logits(tokens, block_size=block_size).float().clone()
        self.forwards.add(1)
        logits[..., self.model.mask_id] = float("-inf")
        return torch.softmax(logits, dim=-1)


@runtime_checkable
class Remasker(Protocol):
    """Ranks the positions of a finished draft for remasking before the next stage.

    ``keys(tokens, scores, eligible, *, context)``: tokens (batch, length) long; scores (batch,
    length) float, the tracker's (higher = more confident); eligible (batch, length) bool (not
    frozen, not already masked); context a ``RemaskContext`` -> (batch, length) float keys, lower =
    remasked first. Keys of ineligible positions are ignored. Ties are broken by the sampler at
    random. Deterministic given the context's streams; inputs are not modified."""

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor: ...


REMASKERS: Registry[Remasker] = Registry("remaskers", entry_point_group="dind.remaskers")


def remask_counts(eligible: Tensor, ratio: float) -> Tensor:
    """(batch,) long: floor(ratio * n_eligible) per row, the floor of the float64 product (as
    ``math.floor(ratio * n)``: 0.29 of 100 positions is 28, since 0.29 * 100 = 28.999...)."""
    if not 0.0 <= ratio <= 1.0 or math.isnan(ratio):
        raise ValueError(f"ratio must be in [0, 1] (got {ratio})")
    n = eligible.sum(dim=1)
    counts = torch.floor(n.double() * ratio).long()
    return torch.minimum(counts, n)


def remask(
    remasker: Remasker,
    tokens: Tensor,
    scores: Tensor,
    eligible: Tensor,
    ratio: float,
    context: RemaskContext,
) -> Tensor:
    """(batch, length) bool: exactly floor(ratio * n_eligible) eligible positions per row, those
    with the lowest ``remasker.keys``; what the multi-stage sampler calls once per stage."""
    counts = remask_counts(eligible, ratio)
    keys = remasker.keys(tokens, scores, eligible, context=context)
    if keys.shape != tokens.shape:
        raise ValueError(
            f"{type(remasker).__name__}.keys must return (batch, length) = {tuple(tokens.shape)} keys "
            f"(got {tuple(keys.shape)})"
        )
    if torch.isnan(keys).any():  # one check per stage; a NaN key has no place in the order
        raise NonFiniteError(f"{type(remasker).__name__}.keys returned NaN keys")
    return choose_remasked(keys, eligible, counts, context.streams)


def choose_remasked(
    keys: Tensor, eligible: Tensor, counts: Tensor, streams: RowStreams | Sequence[torch.Generator]
) -> Tensor:
    """(batch, length) bool: per row the ``counts[row]`` eligible positions with the lowest keys
    (not NaN). Ties are broken by uniforms from row r's stream (``streams``: a RowStreams, or
    one torch.Generator per row, from which one seed each is drawn)."""
    if keys.shape != eligible.shape:
        raise ValueError(
            f"keys and eligible must have one shape (got {tuple(keys.shape)}, {tuple(eligible.shape)})"
        )
    batch, length = keys.shape
    rows = streams.batch if isinstance(streams, RowStreams) else len(streams)
    if rows != batch:
        raise ValueError(f"need one random stream (or generator) per row (got {rows}, batch {batch})")
    ties = as_row_streams(streams).to(keys.device).child(REMASK_TIES).uniform(length)
    return _choose(keys, eligible, counts, ties)


def lowest_k(
    scores: Tensor, eligible: Tensor, counts: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """(batch, length) bool: per row the ``counts[row]`` eligible positions with the lowest scores,
    ties at random, all rows from one ``generator`` (``choose_remasked`` takes one per row)."""
    if scores.shape != eligible.shape:
        raise ValueError(
            f"scores and eligible must have one shape (got {tuple(scores.shape)}, {tuple(eligible.shape)})"
        )
    device = generator.device if generator is not None else scores.device
    uniforms = torch.rand(scores.shape, generator=generator, device=device)
    return _choose(scores, eligible, counts, uniforms.to(scores.device))


def _choose(keys: Tensor, eligible: Tensor, counts: Tensor, uniforms: Tensor) -> Tensor:
    """A random permutation (the uniforms' order), then stable sorts by key and by eligibility:
    equal keys come in random order, and eligible positions precede ineligible ones."""
    length = keys.shape[1]
    order = uniforms.argsort(dim=1)
    order = order.gather(1, keys.double().gather(1, order).argsort(dim=1, stable=True))
    ineligible = (~eligible).gather(1, order).to(torch.uint8)
    order = order.gather(1, ineligible.argsort(dim=1, stable=True))
    chosen_sorted = torch.arange(length, device=keys.device)[None, :] < counts[:, None]
    return torch.zeros_like(eligible).scatter(1, order, chosen_sorted) & eligible
