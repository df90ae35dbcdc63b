import math
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.validation import (
    Rule,
    closed_unit_interval,
    half_open_unit_interval,
    non_negative_int,
    optional_positive_int,
    optional_positive_number,
    positive_int,
    positive_number,
)


def _build(validator, value):
    holder = attrs.make_class("Holder", {"amount": attrs.field(validator=validator)}, frozen=True)
    return holder(value)


def _accepts(validator, value) -> bool:
    try:
        _build(validator, value)
    except ValueError:
        return False
    return True


INT_RULES = [(positive_int, 1), (non_negative_int, 0)]


@pytest.mark.parametrize(("validator", "least"), INT_RULES)
@given(value=st.integers(-(2**70), 2**70))
def test_int_rules_accept_exactly_the_integers_from_their_bound(validator, least, value):
    assert _accepts(validator, value) == (value >= least)


@pytest.mark.parametrize("validator", [positive_int, non_negative_int, optional_positive_int])
@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "3", math.nan])
def test_int_rules_reject_bools_floats_and_strings(validator, value):
    assert not _accepts(validator, value)


@pytest.mark.parametrize(
    "validator", [positive_number, optional_positive_number, closed_unit_interval, half_open_unit_interval]
)
@pytest.mark.parametrize("value", [True, "0.5", [0.5]])
def test_number_rules_reject_bools_and_non_numbers_with_a_value_error(validator, value):
    assert not _accepts(validator, value)


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_number_and_interval_rules_on_floats(value):
    assert _accepts(positive_number, value) == (not math.isnan(value) and value > 0)
    assert _accepts(closed_unit_interval, value) == (not math.isnan(value) and 0.0 <= value <= 1.0)
    assert _accepts(half_open_unit_interval, value) == (not math.isnan(value) and 0.0 < value <= 1.0)


@pytest.mark.parametrize(
    ("validator", "accepted", "rejected"),
    [
        (closed_unit_interval, [0.0, 0, 1, 1.0, 0.5], [-1e-12, 1.0000001]),
        (half_open_unit_interval, [1e-300, 1, 1.0, 0.5], [0, 0.0, -0.0, 1.5]),
        (positive_number, [1, 5e-324, math.inf], [0, 0.0, -math.inf]),
    ],
)
def test_interval_endpoints(validator, accepted, rejected):
    assert all(_accepts(validator, value) for value in accepted)
    assert not any(_accepts(validator, value) for value in rejected)


@pytest.mark.parametrize(
    ("optional", "required", "value"),
    [(optional_positive_int, positive_int, 3), (optional_positive_number, positive_number, 0.5)],
)
def test_optional_rules_add_none_and_nothing_else(optional, required, value):
    assert _accepts(optional, None) and not _accepts(required, None)
    assert _accepts(optional, value) and _accepts(required, value)
    assert not _accepts(optional, 0) and not _accepts(required, 0)


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (positive_int, 0, "amount must be a positive integer (got 0)"),
        (positive_int, True, "amount must be a positive integer (got True)"),
        (optional_positive_int, -2, "amount must be a positive integer or None (got -2)"),
        (non_negative_int, -1, "amount must be an integer >= 0 (got -1)"),
        (positive_number, 0.0, "amount must be > 0 (got 0.0)"),
        (optional_positive_number, -1.5, "amount must be > 0 or None (got -1.5)"),
        (closed_unit_interval, math.nan, "amount must be in [0, 1] (got nan)"),
        (half_open_unit_interval, 0.0, "amount must be in (0, 1] (got 0.0)"),
        (positive_int.or_none("null"), 0, "amount must be a positive integer or null (got 0)"),
        (positive_int, "4", "amount must be a positive integer (got '4')"),
    ],
)
def test_messages_name_the_field_the_rule_and_the_value(validator, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _build(validator, value)


def test_a_custom_rule_is_an_attrs_validator():
    even = Rule(lambda value: value % 2 == 0, "even")
    assert _build(even, 4).amount == 4
    with pytest.raises(ValueError, match=r"^amount must be even or null \(got 3\)$"):
        _build(even.or_none("null"), 3)
    assert _build(even.or_none(), None).amount is None
