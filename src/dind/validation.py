"""Shared attrs validators for numeric config fields.

Each validator raises ``ValueError("<field> must be <rule> (got <value>)")``, also for a value of
the wrong type (None included, unless the rule is optional). Integers and numbers exclude bool
(``True`` is an ``int`` to Python, never a count or a rate in a config); the number and interval
rules reject NaN.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class Rule:
    """An attrs validator: ``accepts(value)`` must hold, else ``ValueError`` naming the field,
    ``description`` and the value."""

    accepts: Callable[[Any], bool]
    description: str

    def __call__(self, instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if not self.accepts(value):
            raise ValueError(f"{attribute.name} must be {self.description} (got {shown(value)})")

    def or_none(self, word: str = "None") -> Rule:
        """The same rule that also accepts None; ``word`` spells None in the message (YAML configs
        say "null")."""
        return Rule(lambda value: value is None or self.accepts(value), f"{self.description} or {word}")


def shown(value: Any, limit: int = 200) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters (a huge int as its size)."""
    if _is_int(value) and value.bit_length() > 600:  # repr of a 4300-digit int raises ValueError
        return f"an integer of {len(format(value, 'x')) * 4} bits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def bounded_int(limit: int) -> Rule:
    """A positive integer at most ``limit``: sizes beyond it are refused before anything is allocated."""
    return Rule(lambda value: _is_int(value) and 1 <= value <= limit, f"a positive integer <= {limit:,}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # NaN fails every comparison below, so it needs no test of its own
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


positive_int = Rule(lambda value: _is_int(value) and value >= 1, "a positive integer")
optional_positive_int = positive_int.or_none()
non_negative_int = Rule(lambda value: _is_int(value) and value >= 0, "an integer >= 0")
positive_number = Rule(lambda value: _is_number(value) and value > 0, "> 0")
optional_positive_number = positive_number.or_none()
closed_unit_interval = Rule(lambda value: _is_number(value) and 0.0 <= value <= 1.0, "in [0, 1]")
half_open_unit_interval = Rule(lambda value: _is_number(value) and 0.0 < value <= 1.0, "in (0, 1]")
