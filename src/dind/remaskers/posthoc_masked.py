"""Masked post-hoc confidence: re-score a finished draft with each position MASKED when read.

What ``posthoc`` scores: the model's probability of each token given the whole draft with that
token visible (one forward over the unmasked draft). The denoiser's loss is never computed at
unmasked positions, so those outputs are untrained (often near-copies of the input, hence the
over-confidence the paper reports). This variant reads p(token) only where the model was trained
to predict: the eligible positions are split into ``chunks`` interleaved groups (position mod
``chunks``); for each group one forward sees the draft with that group masked, and each masked
position's key is the probability of its drafted token. Cost: ``chunks`` forwards per stage
(not counted in the NFE trace, like ``posthoc``). Closest practical reading of PAPER's
"re-score the finished sequence" that scores every token the way the model was trained.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.remaskers.base import REMASKERS, RemaskContext
from dind.validation import optional_positive_int, positive_int


@REMASKERS.register("posthoc_masked")
@attrs.frozen
class MaskedPostHocRemasker:
    """Keys = p(drafted token | draft with its group of positions masked), ``chunks`` forwards
    with ``block_size`` (None = bidirectional, the global block)."""

    chunks: int = attrs.field(default=4, validator=positive_int)
    block_size: int | None = attrs.field(default=None, validator=optional_positive_int)

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        if context.model is None:
            raise ValueError("posthoc_masked needs the model: build RemaskContext(model=...) (got None)")
        mask_id = context.model.mask_id
        keys = torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
        group = torch.arange(tokens.shape[1], device=tokens.device) % self.chunks
        for index in range(self.chunks):
            hidden = eligible & (group == index)[None, :]
            if not hidden.any():
                continue
            probs = context.draft_probs(tokens.masked_fill(hidden, mask_id), block_size=self.block_size)
            read = probs.gather(-1, tokens[..., None].clamp(max=probs.shape[-1] - 1)).squeeze(-1)
            keys = torch.where(hidden, read, keys)
        return keys
