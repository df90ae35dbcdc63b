"""Random remasking: a uniformly random subset of the eligible positions."""

import math

import torch

from dind.remaskers import REMASKERS


def test_roughly_uniform_over_eligible_positions():
    # 3000 draws of floor(0.25 * 12) = 3 of 12 eligible positions: each is picked with p = 1/4;
    # per-position counts within a 4-sigma binomial bound
    eligible = torch.tensor([True] * 6 + [False] * 4 + [True] * 6)[None].expand(3000, 16)
    scores = torch.arange(16.0)[None].expand(3000, 16)  # must be ignored
    chosen = REMASKERS.build("random").select(
        torch.zeros(3000, 16, dtype=torch.long),
        scores,
        eligible,
        0.25,
        generator=torch.Generator().manual_seed(0),
    )
    counts = chosen.sum(0).double()
    assert (counts[6:10] == 0).all()
    n, p = 3000, 0.25
    assert ((counts[eligible[0]] - n * p).abs() <= 4 * math.sqrt(n * p * (1 - p))).all()


def test_different_seeds_give_different_subsets():
    eligible = torch.ones(1, 32, dtype=torch.bool)
    remasker = REMASKERS.build("random")
    picks = {
        tuple(
            remasker.select(
                torch.zeros(1, 32, dtype=torch.long),
                torch.zeros(1, 32),
                eligible,
                0.5,
                generator=torch.Generator().manual_seed(s),
            )[0].tolist()
        )
        for s in range(5)
    }
    assert len(picks) == 5
