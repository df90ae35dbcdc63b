"""BD3-LM's first-hitting rule: one uniformly chosen masked position per step.

The argmax of i.i.d. uniforms over the masked positions is a uniform choice among them. The step
budget is ignored (a block with m masked positions takes m steps), so NFEs = generated tokens.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from torch import Tensor

from dind.sampling.unmasking.base import UNMASKING_RULES, most_confident


@UNMASKING_RULES.register("first_hitting")
@attrs.frozen
class FirstHitting:
    uses_confidence: ClassVar[bool] = False
    may_skip_steps: ClassVar[bool] = False
    uses_steps: ClassVar[bool] = False  # a "/N" step budget would be ignored: an error

    def default_steps(self, width: int) -> int:
        return width

    def select(
        self, masked: Tensor, noise: Tensor, confidence: Tensor | None, *, step: int, steps: int
    ) -> Tensor:
        return most_confident(masked, noise)
