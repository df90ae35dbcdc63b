"""The shared argparse types of dind.cli.support: one rule per kind of number, used by every command."""

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.cli.support import comma_list, positive_int, unit_float


@given(st.integers(max_value=0))
def test_positive_int_refuses_zero_and_negatives(value):
    with pytest.raises(ValueError):
        positive_int(str(value))


@pytest.mark.parametrize("text", ["-0.1", "1.5", "nan", "inf", "1e-400", "-1e-400"])
def test_unit_float_refuses_out_of_range_and_underflow(text):
    with pytest.raises(ValueError):
        unit_float(text)


@given(st.floats(min_value=0, max_value=1))
def test_unit_float_accepts_every_ratio(value):
    assert unit_float(repr(value)) == value


def test_a_list_option_uses_the_rule_of_its_element():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=comma_list(positive_int))
    parser.add_argument("--ratios", type=comma_list(unit_float))
    assert parser.parse_args(["--sizes", "4, 16", "--ratios", "0,0.5"]) == argparse.Namespace(
        sizes=[4, 16], ratios=[0.0, 0.5]
    )
    for argv in (["--sizes", "4,0"], ["--sizes", ","], ["--ratios", "0.5,1e-400"], ["--ratios", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_threads_beyond_a_few_per_core_are_refused(monkeypatch):
    import os

    from dind.cli.support import THREADS_PER_CORE, positive_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert positive_threads(str(2 * THREADS_PER_CORE)) == 2 * THREADS_PER_CORE
    with pytest.raises(
        argparse.ArgumentTypeError, match=r"at most 8 \(4 x this machine's 2 cores.*\(got 9\)"
    ):
        positive_threads("9")
