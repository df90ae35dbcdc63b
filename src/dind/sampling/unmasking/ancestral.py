"""MDLM's ancestral (DDPM) update over ``steps`` time steps per block.

Step i goes from t = 1 - i / T to s = 1 - (i + 1) / T; a masked position is revealed with
probability (alpha(s) - alpha(t)) / (1 - alpha(t)), which is 1 / (T - i) under the log-linear
schedule, and the last step (s = 0) reveals everything left. A step may reveal nothing; the block
sampler then reuses the last p(x0) (MDLM's ``ddpm_cache``), which is what makes NFEs < steps.

This is the one registered rule with ``may_skip_steps``: a step before the last may reveal nothing.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
from torch import Tensor

from dind.sampling.unmasking.base import UNMASKING_RULES
from dind.schedules.base import NoiseSchedule
from dind.schedules.loglinear import LogLinearSchedule


def reveal_probability(schedule: NoiseSchedule, step: int, steps: int) -> float:
    """Probability that a still-masked position is revealed at step ``step`` of ``steps``."""
    if step >= steps - 1:
        return 1.0
    t = torch.tensor([1.0 - step / steps, 1.0 - (step + 1) / steps], dtype=torch.float64)
    alpha_t, alpha_s = schedule.alpha(t).tolist()
    return (alpha_s - alpha_t) / (1.0 - alpha_t)


@UNMASKING_RULES.register("ancestral")
@attrs.frozen
class Ancestral:
    """``schedule``: the noise schedule the model was trained with (log-linear in BD3-LM/MDLM)."""

    uses_confidence: ClassVar[bool] = False
    may_skip_steps: ClassVar[bool] = True
    schedule: NoiseSchedule = attrs.field(factory=LogLinearSchedule)

    def default_steps(self, width: int) -> int:
        return width

    def select(
        self, masked: Tensor, noise: Tensor, confidence: Tensor | None, *, step: int, steps: int
    ) -> Tensor:
        return masked & (noise < reveal_probability(self.schedule, step, steps))
