"""attrs validators and converters shared by the training config sections (``TrainSettings``,
``ObjectiveConfig``, ``OptimConfig``, ...): defined once here, used by every section's fields."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from dind.validation import positive_int, positive_number

# config files spell None as YAML's null
positive_int_or_null = positive_int.or_none("null")
positive_number_or_null = positive_number.or_none("null")


def one_of(*options: str) -> Any:
    """A validator for a closed set of strings (a ``Literal`` field)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in options:
            raise ValueError(f"{attribute.name} must be one of {', '.join(options)} (got {value!r})")

    return check


def finite(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number (got {value})")


def optional_float(name: str) -> Callable[[Any], float | None]:
    """A converter to float or None that names ``name`` when the value is neither (YAML 1.1 reads
    "1e-4", without a dot, as a string, so strings that spell a number are accepted)."""

    def convert(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number or null (got {value!r})")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or null (got {value!r})") from None

    return convert


def floats(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)
