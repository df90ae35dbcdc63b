"""Plan text errors: anything unparsable is a ValueError naming the stage; duplicate options and
remask ratios that round to zero positions are refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.sampling.plan import Stage, StagePlan

GRAMMAR = st.text(alphabet="0123456789L@:/{}=,.->eE+ _abcdefghijklmnopqrstuvwxyz", max_size=40)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=40), GRAMMAR))
def test_parse_raises_only_value_error_naming_a_stage(text):
    try:
        plan = StagePlan.parse(text)
    except ValueError as error:
        assert str(error).startswith("stage ") or "stages" in str(error)
    else:
        assert StagePlan.parse(str(plan)) == plan  # whatever parses round-trips


@pytest.mark.parametrize(
    "text",
    [
        "4 -> 32@0.5{unmasking=a,unmasking=b}",  # the issue's example: reported before the names
        "4 -> 32@0.5{top_p=0.9,top_p=0.8}",
        "4 -> 32@0.5{temperature=1,temperature=1}",
        "4 -> 32@0.5{unmasking=first_hitting,unmasking=ancestral}",
        "4{top_p=0.5,temperature=2,top_p=0.5} -> 32@0.5",
    ],
)
def test_duplicate_options_name_the_stage_and_the_option(text):
    stage = 2 if text.startswith("4 ->") else 1
    with pytest.raises(ValueError, match=rf"^stage {stage} \(.*\): option '\w+' is given more than once"):
        StagePlan.parse(text)


@settings(max_examples=200, deadline=None)
@given(
    ratio=st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    length=st.sampled_from([8, 16, 64, 256, 1024]),
    prompt=st.integers(min_value=0, max_value=7),
)
def test_a_ratio_is_refused_exactly_when_it_remasks_no_position(ratio, length, prompt):
    plan = StagePlan((Stage(4), Stage(None, remask_ratio=ratio)))
    generated = length - prompt
    if math.floor(ratio * generated) == 0:
        with pytest.raises(
            ValueError, match=rf"^stage 2: remask_ratio .* remasks no position .* >= 1/{generated}"
        ):
            plan.validate(length, prompt_length=prompt)
    else:
        plan.validate(length, prompt_length=prompt)


def test_the_issue_example():
    with pytest.raises(ValueError, match=r"stage 2: remask_ratio 0.001 remasks no position .*length 256"):
        StagePlan.parse("4 -> 32@0.001").validate(256)
    StagePlan.parse("4 -> 32@0.004").validate(256)  # floor(1.024) = 1


@pytest.mark.parametrize("ratio", ["1e-400", "0.5e-330", "7E-999", "1e-324"])
def test_a_ratio_that_underflows_to_zero_is_an_error(ratio):
    with pytest.raises(ValueError, match=rf"stage 2 .*remask_ratio '{ratio}' is not zero but underflows"):
        StagePlan.parse(f"4 -> L@{ratio}")


@given(st.floats(min_value=0, max_value=1))
@settings(max_examples=50, deadline=None)
def test_every_ratio_that_a_float_holds_round_trips(ratio):
    for text in (repr(ratio), f"{ratio:e}"):
        if float(text) == ratio:  # "%e" may round a subnormal to zero digits: then it is not the same value
            assert StagePlan.parse(f"4 -> L@{text}").stages[1].remask_ratio == ratio
    assert StagePlan.parse("4 -> L@0e-400").stages[1].remask_ratio == 0.0  # an explicit zero stays zero


def test_absurd_step_budgets_are_refused():
    with pytest.raises(
        ValueError, match=r"stage 2 .*steps must be a positive integer <= 1,048,576 .*got 1048577"
    ):
        StagePlan.parse("4 -> L@0.5/1048577")
    assert StagePlan.parse("4 -> L@0.5/1048576").stages[1].steps == 2**20
