"""Polynomial schedule: alpha(t) = 1 - t**power (power = 1 is the log-linear schedule)."""

from __future__ import annotations

import attrs
from torch import Tensor

from dind.schedules.base import SCHEDULES
from dind.validation import positive_number


@SCHEDULES.register("polynomial")
@attrs.frozen
class PolynomialSchedule:
    power: float = attrs.field(default=2.0, validator=positive_number)

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t**self.power

    def alpha_derivative(self, t: Tensor) -> Tensor:
        return -self.power * t ** (self.power - 1.0)

    def weight(self, t: Tensor) -> Tensor:
        # p t^(p-1) / t^p
        return self.power / t
