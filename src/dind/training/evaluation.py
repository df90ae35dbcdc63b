"""Validation during training: the NELBO on held-out chunks and the clipped-schedule search.

Plain functions of explicit inputs (the module to call, the objective, the validation chunks, the
batch geometry, the process group), so a research script calls them on any model.

Validation is deterministic: the first ``batches`` validation batches of ``rows`` chunks in corpus
order, the noise of batch i drawn from a generator seeded with (seed, i), the unclipped range
(1e-3, 1). The reported ``val_nelbo`` is the mixed objective on validation data: the NELBO at each
block size the mix draws, weighted by its probability. Ranks split the batches (and run padding
batches that do not count, so every rank runs the same number of forwards). The caller chooses
the weights and the mode (the Trainer: EMA weights, dropout off, its autocast).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from dind.training.distributed import DistributedContext
from dind.training.objective import Objective, sample_nelbo
from dind.training.variance import (
    FULL_RANGE,
    SearchResult,
    VarianceConfig,
    candidate_intervals,
    clipped_schedule_search,
)

_EVAL_SEED_OFFSET = 1_000_003
_SINGLE = DistributedContext("none", 0, 1, torch.device("cpu"))


def noise_generator(seed: int, index: int) -> torch.Generator:
    """The generator of batch ``index``'s noise: seeded with (seed, index), whatever the block size
    (``dind nelbo`` draws with the same rule, so it reproduces ``val_nelbo_block<B>``)."""
    return torch.Generator().manual_seed(seed * _EVAL_SEED_OFFSET + index)


def validation_batch(validation: Any, index: int, rows: int) -> Tensor:
    """Batch ``index`` of ``rows`` consecutive validation chunks: (rows, length) long."""
    return validation[torch.arange(index * rows, (index + 1) * rows)]


def batch_indices(
    count: int, rows: int, validation: Any, context: DistributedContext | None, parameter: str
) -> list[tuple[int, bool]]:
    """(batch index, counted) pairs this rank runs for ``count`` batches of ``rows`` chunks."""
    if count * rows > len(validation):
        raise ValueError(
            f"{parameter} * micro-batch rows must fit in the validation split "
            f"(got {count} * {rows} > {len(validation)} chunks); lower {parameter} or raise "
            "data.validation_fraction"
        )
    context = context or _SINGLE
    world, rank = context.world_size, context.rank
    indices = (rank + k * world for k in range(math.ceil(count / world)))
    return [(index % count, index < count) for index in indices]


@torch.no_grad()
def _nelbo(
    model: nn.Module,
    objective: Objective,
    validation: Any,
    block_size: int,
    *,
    rows: int,
    batches: int,
    seed: int,
    mask_id: int | None,
    context: DistributedContext | None,
) -> float:
    totals = torch.zeros(2, dtype=torch.float64)
    for index, counted in batch_indices(batches, rows, validation, context, "eval_batches"):
        generator = noise_generator(seed, index)
        result = sample_nelbo(
            model,
            validation_batch(validation, index, rows),
            objective,
            low=FULL_RANGE[0],
            high=FULL_RANGE[1],
            generator=generator,
            block_sizes=block_size,
            mask_id=mask_id,
        )
        if counted:
            totals += torch.stack([result.nll_sum.double().cpu(), torch.tensor(float(result.tokens))])
    totals = (context or _SINGLE).all_reduce_sum(totals)
    return float(totals[0] / totals[1])


def evaluate(
    model: nn.Module,
    objective: Objective,
    validation: Any,
    *,
    rows: int,
    batches: int,
    seed: int = 0,
    mask_id: int | None = None,
    context: DistributedContext | None = None,
) -> dict[str, float]:
    """{"val_nelbo": mixture, "val_nelbo_block<B>": per block size} in nats per token.

    ``model``: the module to call (a DiT, or a wrapped ``DiffusionForward`` with ``mask_id``), in
    the mode the caller wants (``model.eval()`` for dropout off); ``validation``: chunks indexed by
    a tensor of indices (``TokenChunks``); ``context``: the process group (None: one process)."""
    distribution = objective.block_sizes
    sizes = [int(size) for size in distribution.support()]
    probabilities = [float(p) for p in distribution.probabilities()]
    options = {"rows": rows, "batches": batches, "seed": seed, "mask_id": mask_id, "context": context}
    per_size = {size: _nelbo(model, objective, validation, size, **options) for size in sizes}
    record = {f"val_nelbo_block{size}": value for size, value in per_size.items()}
    record["val_nelbo"] = sum(p * per_size[size] for size, p in zip(sizes, probabilities, strict=True))
    return record


@torch.no_grad()
def search_interval(
    model: nn.Module,
    objective: Objective,
    validation: Any,
    *,
    rows: int,
    variance: VarianceConfig,
    mask_id: int | None = None,
    context: DistributedContext | None = None,
) -> SearchResult:
    """BD3-LM's clipped-schedule search on the first ``variance.batches`` validation batches at
    ``variance.block_size`` (default: the smallest size the mix draws). Returns the result; the
    caller writes ``result.best`` into the model (``set_sampling_interval``)."""
    block_size = variance.block_size or min(int(s) for s in objective.block_sizes.support())
    pairs = batch_indices(variance.batches, rows, validation, context, "variance.batches")
    return clipped_schedule_search(
        model,
        [validation_batch(validation, index, rows) for index, _ in pairs],
        objective,
        block_size=block_size,
        seed=variance.seed,
        intervals=candidate_intervals(variance.widths, variance.step),
        mask_id=mask_id,
        all_reduce=(context or _SINGLE).all_reduce_sum,
        counted=[counted for _, counted in pairs],
    )


def variance_record(result: SearchResult) -> dict[str, Any]:
    """The metrics line of a search."""
    full = result.intervals.index(FULL_RANGE)
    return {
        "kind": "variance",
        "eps_min": result.best[0],
        "eps_max": result.best[1],
        "variance": float(result.variances.min()),
        "variance_full_range": float(result.variances[full]),
    }


def eval_record(record: dict[str, float]) -> dict[str, Any]:
    """The metrics line of an evaluation."""
    return {"kind": "eval", **record, "val_ppl_bound": math.exp(min(record["val_nelbo"], 50.0))}


@attrs.frozen(eq=False)  # holds a model and tensor-indexed chunks
class Validation:
    """``evaluate`` and ``search_interval`` with their inputs bound (what a Trainer holds)."""

    model: nn.Module
    objective: Objective
    chunks: Any
    rows: int
    batches: int
    seed: int = 0
    variance: VarianceConfig = attrs.field(factory=VarianceConfig)
    mask_id: int | None = None
    context: DistributedContext | None = None

    def batch(self, index: int) -> Tensor:
        return validation_batch(self.chunks, index, self.rows)

    def describe(self, length: int) -> str:
        """How much one evaluation computes, e.g. "16 batches of 8 x 256 tokens at block sizes 4,
        256 (32 forward passes)", and the variance search when it runs at validation."""
        sizes = [int(size) for size in self.objective.block_sizes.support()]
        text = (
            f"{self.batches} batches of {self.rows} x {length} tokens at block size{'s' * (len(sizes) > 1)} "
            f"{', '.join(map(str, sizes))} ({self.batches * len(sizes)} forward passes)"
        )
        if self.variance.enabled and self.variance.at_validation:
            count = len(candidate_intervals(self.variance.widths, self.variance.step))
            text += f", then the variance search ({count} intervals on {self.variance.batches} batches)"
        return text

    def evaluate(self) -> dict[str, float]:
        return evaluate(
            self.model,
            self.objective,
            self.chunks,
            rows=self.rows,
            batches=self.batches,
            seed=self.seed,
            mask_id=self.mask_id,
            context=self.context,
        )

    def search(self) -> SearchResult:
        return search_interval(
            self.model,
            self.objective,
            self.chunks,
            rows=self.rows,
            variance=self.variance,
            mask_id=self.mask_id,
            context=self.context,
        )
