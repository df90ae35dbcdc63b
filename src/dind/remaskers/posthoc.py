"""Post-hoc remasking: re-score the finished draft with one more forward pass and remask the
lowest. The paper finds these scores over-confident (Table 2); kept as the ablation baseline."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor

from dind.remaskers.base import REMASKERS, lowest_k, remask_counts

Scorer = Callable[[Tensor], Tensor]


@REMASKERS.register("posthoc")
@attrs.frozen
class PostHocRemasker:
    """``scorer(tokens) -> scores``, both (batch, length); e.g. ``dind.sampling.scorers.model_scorer``.
    The tracked scores are ignored."""

    scorer: Scorer

    def select(
        self,
        tokens: Tensor,
        scores: Tensor,
        eligible: Tensor,
        ratio: float,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        fresh = self.scorer(tokens)
        if fresh.shape != tokens.shape:
            raise ValueError(
                f"scorer must return (batch, length) = {tuple(tokens.shape)} scores "
                f"(got {tuple(fresh.shape)})"
            )
        return lowest_k(fresh, eligible, remask_counts(eligible, ratio), generator)
