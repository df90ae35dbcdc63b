"""Validation during training: the NELBO on held-out chunks and the clipped-schedule search.

Validation is deterministic: the first ``eval_batches`` validation batches in corpus order, the
noise of batch i drawn from a generator seeded with (seed, i), the unclipped range (1e-3, 1),
EMA weights, dropout off. The reported ``val_nelbo`` is the mixed objective on validation data:
the NELBO at each block size the mix draws, weighted by its probability. Ranks split the batches
(and run padding batches that do not count, so every rank runs the same number of forwards).
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import Any

import torch
from torch import Tensor, nn

from dind.data import TokenChunks
from dind.training.objective import sample_nelbo
from dind.training.variance import (
    FULL_RANGE,
    SearchResult,
    candidate_intervals,
    clipped_schedule_search,
    set_sampling_interval,
)

_EVAL_SEED_OFFSET = 1_000_003


class Evaluator:
    def __init__(self, trainer: Any, validation: TokenChunks, *, forward: nn.Module):
        self.trainer = trainer
        self.validation = validation
        self.forward = forward  # the module evaluation calls (unwrapped unless FSDP needs its hooks)

    def _indices(self, count: int, parameter: str) -> list[tuple[int, bool]]:
        """(batch index, counted) pairs this rank runs."""
        rows = self.trainer.micro_batch
        if count * rows > len(self.validation):
            raise ValueError(
                f"{parameter} * micro-batch rows must fit in the validation split "
                f"(got {count} * {rows} > {len(self.validation)} chunks); lower {parameter} or raise "
                "data.validation_fraction"
            )
        world, rank = self.trainer.context.world_size, self.trainer.context.rank
        indices = (rank + k * world for k in range(math.ceil(count / world)))
        return [(index % count, index < count) for index in indices]

    def batch(self, index: int) -> Tensor:
        rows = self.trainer.micro_batch
        return self.validation[torch.arange(index * rows, (index + 1) * rows)]

    def _nelbo(self, block_size: int) -> float:
        trainer = self.trainer
        totals = torch.zeros(2, dtype=torch.float64)
        for index, counted in self._indices(trainer.config.eval_batches, "eval_batches"):
            generator = torch.Generator().manual_seed(trainer.config.seed * _EVAL_SEED_OFFSET + index)
            result = sample_nelbo(
                self.forward,
                self.batch(index),
                trainer.objective,
                low=FULL_RANGE[0],
                high=FULL_RANGE[1],
                generator=generator,
                block_sizes=block_size,
                mask_id=trainer.model.mask_id,
            )
            if counted:
                totals += torch.stack([result.nll_sum.double().cpu(), torch.tensor(float(result.tokens))])
        totals = trainer.gathered(totals)
        return float(totals[0] / totals[1])

    def _evaluation_mode(self) -> ExitStack:
        trainer = self.trainer
        trainer.model.eval()
        stack = ExitStack()
        for manager in (torch.no_grad(), trainer.ema_weights(), trainer.autocast_context()):
            stack.enter_context(manager)
        return stack

    def run(self) -> dict[str, float]:
        """{"val_nelbo": mixture, "val_nelbo_block<B>": per block size} in nats per token."""
        distribution = self.trainer.objective.block_sizes
        sizes = [int(size) for size in distribution.support()]
        probabilities = [float(p) for p in distribution.probabilities()]
        try:
            with self._evaluation_mode():
                per_size = {size: self._nelbo(size) for size in sizes}
        finally:
            self.trainer.model.train()
        record = {f"val_nelbo_block{size}": value for size, value in per_size.items()}
        record["val_nelbo"] = sum(p * per_size[size] for size, p in zip(sizes, probabilities, strict=False))
        return record

    def search(self) -> SearchResult:
        """BD3-LM's clipped-schedule search on validation batches; writes the argmin into the model."""
        trainer, variance = self.trainer, self.trainer.config.variance
        block_size = variance.block_size or min(int(s) for s in trainer.objective.block_sizes.support())
        pairs = self._indices(variance.batches, "variance.batches")
        batches = [self.batch(index) for index, _ in pairs]
        try:
            with self._evaluation_mode():
                result = clipped_schedule_search(
                    self.forward,
                    batches,
                    trainer.objective,
                    block_size=block_size,
                    seed=variance.seed,
                    intervals=candidate_intervals(variance.widths, variance.step),
                    mask_id=trainer.model.mask_id,
                    all_reduce=trainer.gathered,
                    counted=[counted for _, counted in pairs],
                )
        finally:
            trainer.model.train()
        set_sampling_interval(trainer.model, result.best)
        return result

    def run_and_log(self) -> int:
        record = self.run()
        if self.trainer.config.variance.enabled and self.trainer.config.variance.at_validation:
            self.search_and_log()
        self.trainer.log(
            {"kind": "eval", **record, "val_ppl_bound": math.exp(min(record["val_nelbo"], 50.0))}
        )
        return self.trainer.step

    def search_and_log(self) -> None:
        result = self.search()
        full = result.intervals.index(FULL_RANGE)
        self.trainer.log(
            {
                "kind": "variance",
                "eps_min": result.best[0],
                "eps_max": result.best[1],
                "variance": float(result.variances.min()),
                "variance_full_range": float(result.variances[full]),
            }
        )
