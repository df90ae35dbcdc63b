"""The NoiseSchedule protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from dind.registry import Registry


@runtime_checkable
class NoiseSchedule(Protocol):
    """Keep-probability alpha(t) of the masked forward process, t in [0, 1].

    Invariants (checked for every registered schedule by tests/schedules/test_contract.py):
    alpha(0) = 1, alpha(1) = 0, alpha non-increasing; ``weight(t) = -alpha'(t) / (1 - alpha(t))``
    is the NELBO weight of a masked token's cross-entropy and is >= 0 on (0, 1].
    All methods act elementwise on a tensor of times of any shape.
    """

    def alpha(self, t: Tensor) -> Tensor: ...

    def alpha_derivative(self, t: Tensor) -> Tensor: ...

    def weight(self, t: Tensor) -> Tensor: ...


SCHEDULES: Registry[NoiseSchedule] = Registry("schedules", entry_point_group="dind.schedules")
