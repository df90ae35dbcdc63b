"""Every registered unmasking rule keeps the UnmaskingRule contract; each rule's own semantics."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.sampling.unmasking import (
    UNMASKING_RULES,
    Ancestral,
    ConfidenceThreshold,
    ConfidenceTopK,
    reveal_probability,
)
from dind.schedules.loglinear import LogLinearSchedule

NAMES = UNMASKING_RULES.names()


def test_the_four_rules_are_registered():
    assert {"first_hitting", "ancestral", "confidence_topk", "confidence_threshold"} <= set(NAMES)


@st.composite
def step_states(draw):
    batch = draw(st.integers(1, 4))
    width = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    g = torch.Generator().manual_seed(seed)
    masked = torch.rand(batch, width, generator=g) < density
    noise = torch.rand(batch, width, generator=g, dtype=torch.float64)
    confidence = torch.rand(batch, width, generator=g).masked_fill(~masked, float("-inf"))
    steps = draw(st.integers(1, 2 * width))
    step = draw(st.integers(0, 2 * steps))
    return masked, noise, confidence, step, steps


def _select(rule, masked, noise, confidence, step, steps):
    return rule.select(masked, noise, confidence if rule.uses_confidence else None, step=step, steps=steps)


@pytest.mark.parametrize("name", NAMES)
@given(state=step_states())
def test_reveals_only_masked_and_makes_progress(name, state):
    rule = UNMASKING_RULES.build(name)
    masked, noise, confidence, step, steps = state
    reveal = _select(rule, masked, noise, confidence, step, steps)
    assert reveal.dtype == torch.bool and reveal.shape == masked.shape
    assert not (reveal & ~masked).any()
    has_masked = masked.any(dim=1)
    if not rule.may_skip_steps:
        assert (reveal.any(dim=1) | ~has_masked).all()
    if step >= steps - 1:
        assert (reveal.any(dim=1) | ~has_masked).all()
        if rule.may_skip_steps:
            assert torch.equal(reveal, masked)


@pytest.mark.parametrize("name", NAMES)
@given(state=step_states())
def test_rows_are_independent(name, state):
    rule = UNMASKING_RULES.build(name)
    masked, noise, confidence, step, steps = state
    together = _select(rule, masked, noise, confidence, step, steps)
    alone = torch.cat([
        _select(rule, masked[r : r + 1], noise[r : r + 1], confidence[r : r + 1], step, steps)
        for r in range(masked.shape[0])
    ])  # fmt: skip
    assert torch.equal(together, alone)


@pytest.mark.parametrize("name", NAMES)
@given(width=st.integers(1, 16), steps=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_a_block_terminates_within_max_width_steps(name, width, steps, seed):
    rule = UNMASKING_RULES.build(name)
    g = torch.Generator().manual_seed(seed)
    masked = torch.ones(2, width, dtype=torch.bool)
    for step in range(max(width, steps)):
        noise = torch.rand(2, width, generator=g, dtype=torch.float64)
        confidence = torch.rand(2, width, generator=g).masked_fill(~masked, float("-inf"))
        masked &= ~_select(rule, masked, noise, confidence, step, steps)
        if not masked.any():
            break
    assert not masked.any()


@pytest.mark.parametrize("name", NAMES)
def test_default_steps_is_positive(name):
    assert UNMASKING_RULES.build(name).default_steps(4) >= 1


def test_first_hitting_reveals_one_uniformly_chosen_masked_position(generator):
    rule = UNMASKING_RULES.build("first_hitting")
    masked = torch.tensor([[True, False, True, True, False]]).expand(30000, -1)
    noise = torch.rand(masked.shape, generator=generator, dtype=torch.float64)
    reveal = rule.select(masked, noise, None, step=0, steps=5)
    assert (reveal.sum(dim=1) == 1).all()
    frequency = reveal.double().mean(dim=0)
    torch.testing.assert_close(
        frequency, torch.tensor([1, 0, 1, 1, 0], dtype=torch.float64) / 3, atol=0.015, rtol=0
    )


def test_ancestral_reveal_probability_is_one_over_steps_left_for_loglinear():
    for steps in (1, 4, 10):
        for step in range(steps):
            assert math.isclose(reveal_probability(LogLinearSchedule(), step, steps), 1 / (steps - step))


def test_ancestral_reveals_each_masked_position_with_that_probability(generator):
    masked = torch.ones(20000, 4, dtype=torch.bool)
    noise = torch.rand(masked.shape, generator=generator, dtype=torch.float64)
    reveal = Ancestral().select(masked, noise, None, step=2, steps=6)
    assert abs(reveal.double().mean().item() - 1 / 4) < 0.01


def test_confidence_topk_reveals_the_ceil_remaining_over_steps_left_most_confident():
    masked = torch.tensor([[True, True, True, True, True, False], [True, False, False, False, False, False]])
    confidence = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2, 0.0], [0.3, 0, 0, 0, 0, 0]])
    reveal = ConfidenceTopK().select(
        masked, torch.zeros(2, 6, dtype=torch.float64), confidence, step=1, steps=3
    )
    # row 0: 5 masked, 2 steps left -> 3 best (0.9, 0.7, 0.5); row 1: 1 masked -> it
    assert reveal.tolist() == [[False, True, True, True, False, False], [True] + [False] * 5]


def test_confidence_threshold_reveals_all_above_and_at_least_the_best():
    masked = torch.tensor([[True, True, True, False], [True, True, False, False]])
    confidence = torch.tensor([[0.95, 0.2, 0.91, 0.99], [0.3, 0.6, 0.99, 0.99]])
    reveal = ConfidenceThreshold(0.9).select(
        masked, torch.zeros(2, 4, dtype=torch.float64), confidence, step=0, steps=4
    )
    assert reveal.tolist() == [[True, False, True, False], [False, True, False, False]]


def test_confidence_threshold_validates():
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\] \(got 1.5\)"):
        ConfidenceThreshold(1.5)
