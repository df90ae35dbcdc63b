"""Refine caches: how a global (refinement) stage reuses work across its denoising steps.

A global stage runs one full bidirectional forward per step over the whole sequence, although a
first-hitting step changes one token per row. A refine cache decides what each step recomputes:

- ``exact`` (the default, ``ExactRefine``): every step is a full forward (today's samples).
- ``skeleton`` (``SkeletonRefine(every=r, radius=w)``, in the style of dLLM-Cache / Fast-dLLM's DualCache /
  dInfer's vicinity refresh): every r-th forward is a full one that stores every position's keys
  and values; in between, a step recomputes, through all layers, only the positions revealed
  since the last step and the ones it samples now, attending over the stored keys/values (the
  recomputed positions' rewritten); ``radius=w`` also recomputes the w neighbours on each side of
  every changed position (a vicinity refresh). Positions not recomputed keep keys/values from an older
  context: an approximation whose quality is measured (benchmarks/results/refine-cpu.md), never
  assumed. ``every=1`` is a full forward every step: exactly the ``exact`` samples (tested).

Plan text: ``L@0.5{cache=skeleton(every=4)}``; only global stages (block ``L``, or one block as
long as the sequence) take a cache. The cache needs a denoiser with features and a partial
forward (the DiT, its static step); other denoisers are refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.registry import Registry
from dind.validation import non_negative_int, positive_int


@runtime_checkable
class RefineCache(Protocol):
    def forward(self, model: Any, tokens: Tensor) -> Callable[[], Any]:
        """For one global stage over ``tokens`` (batch, length), updated in place by the sampler:
        a closure called once per denoising forward, returning features indexable by a (batch,
        length) bool mask (``result[where]`` -> (n, features) in row-major order)."""
        ...


REFINE_CACHES: Registry[RefineCache] = Registry("refine_caches", entry_point_group="dind.refine_caches")


@REFINE_CACHES.register("exact")
@attrs.frozen
class ExactRefine:
    """A full forward every step."""

    def forward(self, model: Any, tokens: Tensor) -> Callable[[], Any]:
        full = model.features if getattr(model, "projects", False) else model.logits
        return lambda: full(tokens, block_size=None)


@REFINE_CACHES.register("skeleton")
@attrs.frozen
class SkeletonRefine:
    """A full forward every ``every`` forwards; in between only the changed and sampled positions
    are recomputed (see the module docstring), and with ``radius`` > 0 also every position within
    ``radius`` of a changed one (dInfer's vicinity refresh: the keys/values a new token disturbs
    most are its neighbours'; costs about 2 * radius + 1 times the positions per partial step)."""

    every: int = attrs.field(default=4, validator=positive_int)
    radius: int = attrs.field(default=0, validator=non_negative_int)

    def forward(self, model: Any, tokens: Tensor) -> Callable[[], Any]:
        inner = getattr(model, "model", model)  # the sampler's counting wrapper holds the denoiser
        if not (getattr(model, "projects", False) and hasattr(inner, "partial_features")):
            name = type(inner).__name__
            raise ValueError(
                f"cache=skeleton needs a denoiser with features and a partial forward, such as a dind DiT "
                f"(got {name}); use cache=exact"
            )
        state = _Skeleton(model, tokens, self.every, self.radius)
        return state.next_forward


@attrs.define(eq=False)
class _Skeleton:
    """The stored keys/values of one stage and which tokens they were computed from."""

    model: Any
    tokens: Tensor  # the sampler's live tokens (updated in place)
    every: int
    radius: int = 0
    forwards: int = 0
    cache: Any = None
    seen: Tensor | None = None  # tokens when each position's keys/values were last computed
    full: Tensor | None = None  # the features of the last full forward, while nothing changed since

    def next_forward(self) -> _SkeletonFeatures:
        refresh = self.forwards % self.every == 0
        self.forwards += 1
        return _SkeletonFeatures(self, refresh)

    def features_at(self, where: Tensor, refresh: bool) -> Tensor:
        if refresh or self.cache is None:
            batch, length = self.tokens.shape
            if self.cache is None:
                self.cache = self.model.new_cache(batch, length)
            self.cache.reset()
            self.full = self.model.cached_features(self.tokens, cache=self.cache, start=0)
            self.seen = self.tokens.clone()
            return self.full[where]
        # rows are independent: the full forward still holds for every row asked for whose
        # tokens did not change since (a step that revealed nothing in them)
        rows_unchanged = (self.tokens == self.seen).all(dim=1) | ~where.any(dim=1)
        if self.full is not None and bool(rows_unchanged.all()):
            return self.full[where]
        self.full = None
        changed = self.tokens != self.seen
        need = _dilate(changed, self.radius) | where
        features = self.model.partial_features(self.tokens, need, cache=self.cache)
        self.seen = torch.where(need, self.tokens, self.seen)
        # the rows of ``need`` (row-major) that are also in ``where``
        return features[where[need]]


def _dilate(where: Tensor, radius: int) -> Tensor:
    """(batch, length) bool: True within ``radius`` positions of a True (the row's own neighbours)."""
    if radius == 0:
        return where
    spread = torch.nn.functional.max_pool1d(where[:, None].float(), 2 * radius + 1, stride=1, padding=radius)
    return spread[:, 0].bool()


@attrs.define(eq=False)
class _SkeletonFeatures:
    """What one skeleton forward hands the sampler: features computed when indexed."""

    state: _Skeleton
    refresh: bool
    _done: bool = False

    def __getitem__(self, where: Tensor) -> Tensor:
        if self._done:  # one step reads one set; a second read recomputes nothing stale
            return self.state.features_at(where, False)
        self._done = True
        return self.state.features_at(where, self.refresh)
