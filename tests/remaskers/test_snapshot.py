"""Snapshot remasking picks the positions with the lowest tracked confidence (PAPER Eq. 6)."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import REMASKERS


@given(seed=st.integers(0, 2**31), length=st.integers(1, 40), ratio=st.floats(0.0, 1.0))
def test_picks_the_lowest_scores_like_a_sort(seed, length, ratio):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randperm(length * 3, generator=generator)[: 3 * length].view(3, length).float()  # distinct
    eligible = torch.rand(3, length, generator=generator) < 0.6
    chosen = REMASKERS.build("snapshot").select(
        torch.zeros(3, length, dtype=torch.long), scores, eligible, ratio, generator=generator
    )
    for row in range(3):
        positions = eligible[row].nonzero().flatten()
        k = math.floor(ratio * len(positions))
        lowest = positions[scores[row, positions].argsort()[:k]]
        assert set(chosen[row].nonzero().flatten().tolist()) == set(lowest.tolist())


def test_infinite_scores_are_never_preferred(generator):
    # frozen positions carry +inf from initial_scores; even if marked eligible they come last
    scores = torch.tensor([[float("inf"), 0.9, 0.1, float("inf"), 0.5]])
    chosen = REMASKERS.build("snapshot").select(
        torch.zeros(1, 5, dtype=torch.long),
        scores,
        torch.ones(1, 5, dtype=torch.bool),
        0.6,
        generator=generator,
    )
    assert chosen.tolist() == [[False, True, True, False, True]]
