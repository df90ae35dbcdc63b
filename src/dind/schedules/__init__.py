"""Noise schedules alpha(t) and time samplers for the masked forward process."""

from dind.schedules.base import SCHEDULES, NoiseSchedule
from dind.schedules.cosine import CosineSchedule
from dind.schedules.loglinear import LogLinearSchedule
from dind.schedules.polynomial import PolynomialSchedule
from dind.schedules.time_sampling import TIME_SAMPLERS, StratifiedTimeSampler, TimeSampler, UniformTimeSampler

__all__ = [
    "SCHEDULES",
    "TIME_SAMPLERS",
    "CosineSchedule",
    "LogLinearSchedule",
    "NoiseSchedule",
    "PolynomialSchedule",
    "StratifiedTimeSampler",
    "TimeSampler",
    "UniformTimeSampler",
]
