"""Verdicts come from paired differences by one rule: |mean| > 2 se (n >= 2)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.eval.verdicts import PairedDifference, mean_se


def test_the_rule_on_hand_made_differences():
    assert PairedDifference.of([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]).verdict() == "lower"  # all -1, se 0
    assert PairedDifference.of([3.0, 3.1, 2.9], [1.0, 1.0, 1.0]).verdict() == "higher"
    assert PairedDifference.of([1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]).verdict() == "no difference"
    assert PairedDifference.of([1.0, 1.0], [1.0, 1.0]).verdict() == "no difference"  # zero difference
    assert PairedDifference.of([1.0], [0.0]).verdict() == "n/a"  # one pair: the rule cannot apply
    assert PairedDifference.of({0: 1.0, 1: 2.0, 5: 9.0}, {1: 1.0, 0: 0.0}).n == 2  # by sample id
    assert PairedDifference.of([1.0, math.nan, 3.0], [0.0, 0.0, 2.0]).n == 2  # non-finite pairs left out
    assert "(n=3): lower" in str(PairedDifference.of([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]))


def test_bad_pairings_are_refused():
    with pytest.raises(ValueError, match="pair up one to one .got 2 and 3"):
        PairedDifference.of([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="both be sequences or both be mappings"):
        PairedDifference.of([1.0], {0: 1.0})


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30), st.floats(-1e3, 1e3))
def test_a_verdict_flips_with_the_order_and_ignores_a_common_shift(values, shift):
    others = [v * 0.5 + 1.0 for v in values]
    forward = PairedDifference.of(values, others)
    backward = PairedDifference.of(others, values)
    flipped = {"lower": "higher", "higher": "lower"}
    assert backward.verdict() == flipped.get(forward.verdict(), forward.verdict())
    shifted = PairedDifference.of([v + shift for v in values], [o + shift for o in others])
    assert shifted.mean == pytest.approx(forward.mean, abs=1e-6 * (1 + abs(shift)))


def test_mean_se_matches_the_textbook_formula():
    mean, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(math.sqrt(1.6666666666666667 / 4))
    assert math.isnan(mean_se([])[0]) and math.isnan(mean_se([1.0])[1])
