"""BD3-LM's and MDLM's log-linear schedule: alpha(t) = 1 - t, NELBO weight 1 / t."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.schedules.base import SCHEDULES


@SCHEDULES.register("loglinear")
@attrs.frozen
class LogLinearSchedule:
    """alpha(t) = 1 - t. Named log-linear because the total noise sigma(t) = -log(1 - t)."""

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def alpha_derivative(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def weight(self, t: Tensor) -> Tensor:
        return 1.0 / t
