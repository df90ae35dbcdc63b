"""Model-based scorers for post-hoc remasking: re-score a finished draft with one forward."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dind.models.protocol import Denoiser
from dind.sampling.proposal import model_probs


def model_scorer(model: Denoiser, block_size: int | None = None) -> Callable[[Tensor], Tensor]:
    """A scorer tokens (batch, length) -> (batch, length) fp32: the model's probability of each
    token given the whole draft, from one forward ``logits(tokens, block_size=block_size)``
    (None = bidirectional) with MASK excluded from the softmax. A MASK token scores 0.

    This is PAPER's "post-hoc" confidence (every token sees the finished draft, itself included,
    which makes it over-confident); pass it to ``PostHocRemasker``.
    """

    def score(tokens: Tensor) -> Tensor:
        with torch.no_grad():
            probs = model_probs(model.logits(tokens, block_size=block_size), model.mask_id)
        return probs.gather(-1, tokens[..., None]).squeeze(-1)

    return score
