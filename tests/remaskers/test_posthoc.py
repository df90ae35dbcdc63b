"""Post-hoc remasking re-scores the draft with the injected scorer and ignores tracked scores."""

import pytest
import torch

from dind.remaskers import REMASKERS


def test_uses_the_injected_scorer_not_the_tracked_scores(generator):
    calls = []

    def scorer(tokens):
        calls.append(tokens.clone())
        return tokens.double()  # low token id = low confidence

    tokens = torch.tensor([[5, 1, 9, 3, 7, 0], [2, 8, 4, 6, 0, 1]])
    tracked = -tokens.float()  # the opposite order: snapshot would pick the high ids
    eligible = torch.tensor([[False, True, True, True, True, True], [True] * 6])
    chosen = REMASKERS.build("posthoc", scorer=scorer).select(
        tokens, tracked, eligible, 0.5, generator=generator
    )
    assert len(calls) == 1 and torch.equal(calls[0], tokens)
    # row 0: eligible ids {1, 9, 3, 7, 0}, floor(2.5) = 2 lowest -> 0 and 1; row 1: 3 lowest -> 0, 1, 2
    assert chosen.tolist() == [
        [False, True, False, False, False, True],
        [True, False, False, False, True, True],
    ]


def test_scorer_shape_is_checked():
    remasker = REMASKERS.build("posthoc", scorer=lambda tokens: tokens[:, :-1].double())
    with pytest.raises(
        ValueError, match=r"scorer must return \(batch, length\) = \(1, 4\) scores \(got \(1, 3\)\)"
    ):
        remasker.select(
            torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool), 0.5
        )
