"""BD3-LM's clipped-schedule search: pick the time range [low, high] that minimises the variance
of the per-block NELBO estimate.

Every candidate interval is scored on the same batches with the same noise seed (common random
numbers), so the comparison measures the interval, not the draw. The argmin is written into the
model's ``sampling_eps_min`` / ``sampling_eps_max`` buffers, so it travels with the checkpoint and
the training loop reads it back from there. Reported validation NELBO always uses (1e-3, 1).
``VarianceConfig`` (the config's ``variance`` section) says when and how the Trainer searches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch import Tensor

from dind.training.fields import floats, positive_int_or_null
from dind.training.objective import Objective, sample_nelbo
from dind.validation import positive_int, positive_number

Interval = tuple[float, float]
FULL_RANGE: Interval = (1e-3, 1.0)


def candidate_intervals(
    widths: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9), step: float = 0.05, floor: float = 1e-3
) -> tuple[Interval, ...]:
    """(max(i, floor), i + w) for each width w and start i in multiples of ``step`` with i + w <= 1,
    then (floor, 1). With the defaults: 36 intervals (BD3-LM's search space)."""
    units = round(1.0 / step)
    intervals: list[Interval] = []
    for width in widths:
        width_units = round(width / step)
        if abs(width_units * step - width) > 1e-9 or not 0 < width_units <= units:
            raise ValueError(f"widths must be multiples of step in (0, 1] (got {width}, step {step})")
        for start in range(units - width_units + 1):
            low = round(start * step, 10)
            intervals.append((max(low, floor), min(round(low + width, 10), 1.0)))
    intervals.append((floor, 1.0))
    return tuple(intervals)


@attrs.frozen
class VarianceConfig:
    """BD3-LM's clipped-schedule search. ``every``: optimizer steps between searches (null: only at
    validation when ``at_validation``). ``block_size`` null = the smallest size the mix draws.
    ``widths`` / ``step``: the candidate intervals (the defaults give BD3-LM's 36)."""

    enabled: bool = False
    every: int | None = attrs.field(default=None, validator=positive_int_or_null)
    at_validation: bool = True
    batches: int = attrs.field(default=8, validator=positive_int)
    block_size: int | None = attrs.field(default=None, validator=positive_int_or_null)
    seed: int = 0
    widths: tuple[float, ...] = attrs.field(default=(0.5, 0.6, 0.7, 0.8, 0.9), converter=floats)
    step: float = attrs.field(default=0.05, converter=float, validator=positive_number)


@attrs.frozen(eq=False)  # holds tensors
class SearchResult:
    """``variances``: (intervals,) float64 variance of the per-block losses under each interval."""

    intervals: tuple[Interval, ...]
    variances: Tensor
    means: Tensor

    @property
    def best(self) -> Interval:
        return self.intervals[int(torch.argmin(self.variances))]


def clipped_schedule_search(
    model: Any,
    batches: Sequence[Tensor],
    objective: Objective,
    *,
    block_size: int,
    intervals: Sequence[Interval] | None = None,
    seed: int = 0,
    mask_id: int | None = None,
    all_reduce: Callable[[Tensor], Tensor] | None = None,
    counted: Sequence[bool] | None = None,
) -> SearchResult:
    """Score every interval by the variance of the per-block losses over ``batches`` (each (batch,
    length) long). ``all_reduce`` sums the (intervals, 3) statistics across ranks, so every rank
    picks the same interval; ``counted[i] = False`` runs batch i without counting it (padding, so
    that every rank runs the same number of forwards)."""
    intervals = tuple(candidate_intervals() if intervals is None else intervals)
    counted = [True] * len(batches) if counted is None else list(counted)
    stats = torch.zeros(len(intervals), 3, dtype=torch.float64)  # count, sum, sum of squares
    with torch.no_grad():
        for index, (low, high) in enumerate(intervals):
            generator = torch.Generator().manual_seed(seed)
            for clean, keep in zip(batches, counted, strict=False):
                result = sample_nelbo(
                    model,
                    clean,
                    objective,
                    low=low,
                    high=high,
                    generator=generator,
                    block_sizes=block_size,
                    mask_id=mask_id,
                )
                if not keep:
                    continue
                losses = result.block_losses.double()
                losses = losses[~losses.isnan()].cpu()
                stats[index] += torch.stack(
                    [torch.tensor(float(losses.numel())), losses.sum(), losses.square().sum()]
                )
    if all_reduce is not None:
        stats = all_reduce(stats)
    count, total, squares = stats.unbind(1)
    means = total / count
    variances = (squares - count * means.square()) / (count - 1).clamp_min(1)
    return SearchResult(intervals=intervals, variances=variances, means=means)


def set_sampling_interval(model: Any, interval: Interval) -> None:
    """Write the interval into the model's ``sampling_eps_min`` / ``sampling_eps_max`` buffers."""
    low, high = interval
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"interval must satisfy 0 <= low < high <= 1 (got {interval})")
    model.sampling_eps_min.fill_(low)
    model.sampling_eps_max.fill_(high)


def sampling_interval(model: Any) -> Interval:
    return float(model.sampling_eps_min), float(model.sampling_eps_max)
