"""Post-hoc remasking: re-score the finished draft with one more forward pass and remask the
lowest. The paper finds these scores over-confident (Table 2); kept as the ablation baseline."""

from __future__ import annotations

from collections.abc import Callable

import attrs
from torch import Tensor

from dind.remaskers.base import REMASKERS, RemaskContext
from dind.validation import optional_positive_int

Scorer = Callable[[Tensor], Tensor]


@REMASKERS.register("posthoc")
@attrs.frozen
class PostHocRemasker:
    """Keys = the model's probability of each token given the whole finished draft (itself
    included), from one forward of ``context.model`` with ``block_size`` (None = bidirectional).
    The tracked scores are ignored. ``scorer(tokens) -> scores``, both (batch, length), replaces
    the context's model when given (e.g. ``dind.sampling.model_scorer(other_model)``)."""

    scorer: Scorer | None = None
    block_size: int | None = attrs.field(default=None, validator=optional_positive_int)

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        if self.scorer is not None:
            context.forwards.add(1)  # one scoring forward of another model
            return self.scorer(tokens)
        probs = context.draft_probs(tokens, block_size=self.block_size)
        return probs.gather(-1, tokens[..., None].clamp(max=probs.shape[-1] - 1)).squeeze(-1)
