"""Cosine schedule: alpha(t) = cos(pi t / 2); masks slowly at first, fast near t = 1."""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from dind.schedules.base import SCHEDULES


@SCHEDULES.register("cosine")
@attrs.frozen
class CosineSchedule:
    def alpha(self, t: Tensor) -> Tensor:
        # cos(pi/2) is 6e-17, not 0: clamp so alpha(1) = 0 exactly
        return torch.cos(0.5 * math.pi * t).clamp_min(0.0).where(t < 1.0, torch.zeros_like(t))

    def alpha_derivative(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def weight(self, t: Tensor) -> Tensor:
        # -alpha'/(1 - alpha) = (pi/2) sin(x) / (1 - cos(x)) = (pi/2) / tan(x/2), x = pi t / 2;
        # the tangent form has no cancellation near t = 0
        return 0.5 * math.pi / torch.tan(0.25 * math.pi * t)
