"""Fast-dLLM's threshold rule: reveal every masked position whose confidence exceeds a threshold.

At least the single most confident masked position is revealed per step, so a block always
terminates; the step budget is ignored (the number of steps adapts to the model's certainty).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from torch import Tensor

from dind.sampling.unmasking.base import UNMASKING_RULES, most_confident
from dind.validation import closed_unit_interval


@UNMASKING_RULES.register("confidence_threshold")
@attrs.frozen
class ConfidenceThreshold:
    """``threshold``: reveal positions whose proposed token has model probability > threshold."""

    uses_confidence: ClassVar[bool] = True
    may_skip_steps: ClassVar[bool] = False
    uses_steps: ClassVar[bool] = False  # a "/N" step budget would be ignored: an error
    threshold: float = attrs.field(default=0.9, converter=float, validator=closed_unit_interval)

    def default_steps(self, width: int) -> int:
        return width

    def select(
        self, masked: Tensor, noise: Tensor, confidence: Tensor | None, *, step: int, steps: int
    ) -> Tensor:
        if confidence is None:
            raise ValueError("confidence_threshold needs confidence (got None)")
        return (masked & (confidence > self.threshold)) | most_confident(masked, confidence)
