"""Snapshot remasking picks the positions with the lowest tracked confidence (PAPER Eq. 6)."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import REMASKERS, RemaskContext, remask


def _remask(scores, eligible, ratio, seed=0):
    context = RemaskContext(
        None, ~eligible, [torch.Generator().manual_seed(seed + r) for r in range(len(scores))]
    )
    tokens = torch.zeros(scores.shape, dtype=torch.long)
    return remask(REMASKERS.build("snapshot"), tokens, scores, eligible, ratio, context)


@given(seed=st.integers(0, 2**31), length=st.integers(1, 40), ratio=st.floats(0.0, 1.0))
def test_picks_the_lowest_scores_like_a_sort(seed, length, ratio):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randperm(length * 3, generator=generator)[: 3 * length].view(3, length).float()  # distinct
    eligible = torch.rand(3, length, generator=generator) < 0.6
    chosen = _remask(scores, eligible, ratio, seed)
    for row in range(3):
        positions = eligible[row].nonzero().flatten()
        k = math.floor(ratio * len(positions))
        lowest = positions[scores[row, positions].argsort()[:k]]
        assert set(chosen[row].nonzero().flatten().tolist()) == set(lowest.tolist())


def test_infinite_scores_are_never_preferred():
    # frozen positions carry +inf from initial_scores; even if marked eligible they come last
    scores = torch.tensor([[float("inf"), 0.9, 0.1, float("inf"), 0.5]])
    chosen = _remask(scores, torch.ones(1, 5, dtype=torch.bool), 0.6)
    assert chosen.tolist() == [[False, True, True, False, True]]
