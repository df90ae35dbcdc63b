"""Verdicts computed from paired differences by one stated rule, never written by hand.

Two plans scored on the same samples (same seeds, same drafts) give per-sample differences
``a_i - b_i``; their mean and standard error decide the verdict:

    RULE: a difference holds when |mean| > 2 se of the paired per-sample differences (n >= 2).

``PairedDifference.verdict()`` returns "lower", "higher", "no difference" or "n/a" (fewer than
two pairs, or no spread: a rule that cannot be applied is said so, not guessed). Reports print the
numbers next to the word (``str(difference)``), so a reader can apply another rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

RULE = "a difference holds when |mean| > 2 se of the paired per-sample differences (n >= 2)"
Z = 2.0
Verdict = Literal["lower", "higher", "no difference", "n/a"]


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the finite values (NaN where there are too few)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = math.fsum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan
    variance = math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(variance / len(finite))


@attrs.frozen
class PairedDifference:
    """Mean and standard error of per-sample differences ``a - b`` over ``n`` pairs."""

    mean: float
    se: float
    n: int

    @classmethod
    def of(
        cls, a: Sequence[float] | Mapping[int, float], b: Sequence[float] | Mapping[int, float]
    ) -> PairedDifference:
        """Pairs by index (sequences: position; mappings: the keys both hold, e.g. sample ids).
        Sequences must have the same length; pairs with a non-finite side are left out."""
        if isinstance(a, Mapping) != isinstance(b, Mapping):
            raise TypeError("a and b must both be sequences or both be mappings of sample ids")
        if isinstance(a, Mapping):
            pairs = [(a[key], b[key]) for key in sorted(a) if key in b]
        else:
            if len(a) != len(b):
                raise ValueError(f"a and b must pair up one to one (got {len(a)} and {len(b)} values)")
            pairs = list(zip(a, b, strict=True))
        differences = [x - y for x, y in pairs if math.isfinite(x) and math.isfinite(y)]
        mean, se = mean_se(differences)
        return cls(mean=mean, se=se, n=len(differences))

    def verdict(self) -> Verdict:
        """By ``RULE``: "lower" (a below b), "higher", "no difference", or "n/a" (rule not applicable)."""
        if self.n < 2 or not math.isfinite(self.se):
            return "n/a"
        if abs(self.mean) > Z * self.se:
            return "lower" if self.mean < 0 else "higher"
        return "no difference"

    def holds(self) -> bool:
        return self.verdict() in ("lower", "higher")

    def __str__(self) -> str:
        if not math.isfinite(self.mean):
            return "n/a"
        return f"{self.mean:+.3g} ± {self.se:.2g} (n={self.n}): {self.verdict()}"
