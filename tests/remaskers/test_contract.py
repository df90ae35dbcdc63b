"""Every registered Remasker: exactly floor(ratio * n_eligible) eligible positions per row,
deterministic given the generator."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import REMASKERS, Remasker, remask_counts


def toy_scorer(tokens: torch.Tensor) -> torch.Tensor:
    """A stand-in for a model re-score: the token id itself."""
    return tokens.double()


# constructor arguments for remaskers that need collaborators; the rest build with none
ARGUMENTS = {"posthoc": {"scorer": toy_scorer}}
NAMES = REMASKERS.names()


def build(name: str) -> Remasker:
    return REMASKERS.build(name, **ARGUMENTS.get(name, {}))


@st.composite
def draft(draw):
    """(tokens, scores, eligible, ratio, seed): a finished draft with frozen and masked positions."""
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31))
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 50, (batch, length), generator=generator)
    # half the cases with ties in the scores, half with distinct ones
    if draw(st.booleans()):
        scores = torch.randint(0, 3, (batch, length), generator=generator).float()
    else:
        scores = torch.rand(batch, length, generator=generator)
    frozen = torch.rand(batch, length, generator=generator) < draw(st.sampled_from([0.0, 0.2, 1.0]))
    already_masked = torch.rand(batch, length, generator=generator) < 0.2
    ratio = draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0)))
    return tokens, scores, ~frozen & ~already_masked, ratio, seed


@pytest.mark.parametrize("name", NAMES)
@given(case=draft())
def test_exact_count_of_eligible_positions(name, case):
    tokens, scores, eligible, ratio, seed = case
    remasker = build(name)
    assert isinstance(remasker, Remasker)
    chosen = remasker.select(tokens, scores, eligible, ratio, generator=torch.Generator().manual_seed(seed))
    assert chosen.shape == tokens.shape and chosen.dtype == torch.bool
    assert not (chosen & ~eligible).any()  # never frozen, never already masked
    expected = [math.floor(ratio * n) for n in eligible.sum(1).tolist()]
    assert chosen.sum(1).tolist() == expected


@pytest.mark.parametrize("name", NAMES)
@given(case=draft())
def test_deterministic_given_the_generator(name, case):
    tokens, scores, eligible, ratio, seed = case
    remasker = build(name)
    a = remasker.select(tokens, scores, eligible, ratio, generator=torch.Generator().manual_seed(seed))
    b = remasker.select(tokens, scores, eligible, ratio, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified(name, generator):
    tokens = torch.randint(0, 50, (2, 16), generator=generator)
    scores = torch.rand(2, 16, generator=generator)
    eligible = torch.rand(2, 16, generator=generator) < 0.7
    copies = tokens.clone(), scores.clone(), eligible.clone()
    build(name).select(tokens, scores, eligible, 0.5, generator=generator)
    assert all(torch.equal(x, y) for x, y in zip((tokens, scores, eligible), copies, strict=True))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_outside_unit_interval_is_rejected(name, ratio):
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\] \(got"):
        build(name).select(
            torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool), ratio
        )


@pytest.mark.parametrize("name", NAMES)
def test_nothing_eligible_selects_nothing(name):
    chosen = build(name).select(
        torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8), torch.zeros(2, 8, dtype=torch.bool), 1.0
    )
    assert not chosen.any()


def test_remask_counts_is_floor_of_ratio_times_eligible():
    eligible = torch.tensor([[True] * 7 + [False], [True] * 8, [False] * 8])
    assert remask_counts(eligible, 0.5).tolist() == [3, 4, 0]
    assert remask_counts(eligible, 1.0).tolist() == [7, 8, 0]
    assert remask_counts(eligible, 0.0).tolist() == [0, 0, 0]
