"""Drawing diffusion times t: one per (batch row, block), inside a clipped range [low, high].

BD3-LM's variance reduction moves the range [beta, omega] during training, so the range is an
argument of ``sample`` rather than part of the sampler.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.registry import Registry


def check_time_range(low: float, high: float) -> None:
    if not (0.0 <= low < high <= 1.0):
        raise ValueError(f"time range must satisfy 0 <= low < high <= 1 (got low={low}, high={high})")


@runtime_checkable
class TimeSampler(Protocol):
    """``sample(batch, blocks, low=, high=, generator=)`` -> t of shape (batch, blocks) in [low, high)."""

    def sample(
        self, batch: int, blocks: int, *, low: float, high: float, generator: torch.Generator | None = None
    ) -> Tensor: ...


TIME_SAMPLERS: Registry[TimeSampler] = Registry("time_samplers", entry_point_group="dind.time_samplers")


def _check_shape(batch: int, blocks: int) -> None:
    if batch < 1 or blocks < 1:
        raise ValueError(f"batch and blocks must be >= 1 (got batch={batch}, blocks={blocks})")


@TIME_SAMPLERS.register("stratified")
@attrs.frozen
class StratifiedTimeSampler:
    """Antithetic (stratified) times: the n = batch * blocks draws put exactly one point in each
    stratum [i/n, (i+1)/n) of [0, 1) before the affine map into [low, high).

    The strata are assigned to (row, block) slots by a random permutation, so a block's time does
    not depend on its index (BD3-LM assigns stratum i to slot i; the set of times is the same).
    """

    def sample(
        self, batch: int, blocks: int, *, low: float, high: float, generator: torch.Generator | None = None
    ) -> Tensor:
        _check_shape(batch, blocks)
        check_time_range(low, high)
        n = batch * blocks
        offsets = torch.randperm(n, generator=generator, dtype=torch.float64)
        u = (offsets + torch.rand(n, generator=generator, dtype=torch.float64)) / n
        return _to_float32_below(low + (high - low) * u, high).reshape(batch, blocks)


@TIME_SAMPLERS.register("uniform")
@attrs.frozen
class UniformTimeSampler:
    """Independent t ~ U[low, high) per (row, block): the higher-variance baseline."""

    def sample(
        self, batch: int, blocks: int, *, low: float, high: float, generator: torch.Generator | None = None
    ) -> Tensor:
        _check_shape(batch, blocks)
        check_time_range(low, high)
        u = torch.rand(batch, blocks, generator=generator, dtype=torch.float64)
        return _to_float32_below(low + (high - low) * u, high)


def _to_float32_below(t: Tensor, high: float) -> Tensor:
    # rounding to float32 may land exactly on `high`; keep the interval half-open
    t = t.float()
    below = torch.nextafter(torch.tensor(high, dtype=torch.float32), torch.tensor(0.0))
    return t.clamp(max=below.item())
