"""Random remasking: a uniformly random subset of the eligible positions."""

import math

import torch

from dind.remaskers import REMASKERS, RemaskContext, remask


def _remask(eligible, scores, ratio, seeds):
    batch = eligible.shape[0]
    context = RemaskContext(None, ~eligible, [torch.Generator().manual_seed(s) for s in seeds])
    return remask(
        REMASKERS.build("random"),
        torch.zeros(eligible.shape, dtype=torch.long),
        scores,
        eligible,
        ratio,
        context,
    )[:batch]


def test_roughly_uniform_over_eligible_positions():
    # 3000 rows of floor(0.25 * 12) = 3 of 12 eligible positions: each is picked with p = 1/4;
    # per-position counts within a 4-sigma binomial bound
    eligible = torch.tensor([True] * 6 + [False] * 4 + [True] * 6)[None].expand(3000, 16)
    scores = torch.arange(16.0)[None].expand(3000, 16)  # must be ignored
    chosen = _remask(eligible, scores, 0.25, range(3000))
    counts = chosen.sum(0).double()
    assert (counts[6:10] == 0).all()
    n, p = 3000, 0.25
    assert ((counts[eligible[0]] - n * p).abs() <= 4 * math.sqrt(n * p * (1 - p))).all()


def test_different_seeds_give_different_subsets():
    eligible = torch.ones(5, 32, dtype=torch.bool)
    picks = {tuple(row.tolist()) for row in _remask(eligible, torch.zeros(5, 32), 0.5, range(5))}
    assert len(picks) == 5
