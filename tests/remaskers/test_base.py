"""lowest_k: the shared selection of the counts[row] lowest-scored eligible positions."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import lowest_k


@given(seed=st.integers(0, 2**31), batch=st.integers(1, 4), length=st.integers(1, 32))
def test_chosen_scores_never_exceed_unchosen_eligible_scores(seed, batch, length):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (batch, length), generator=generator).float()  # many ties
    eligible = torch.rand(batch, length, generator=generator) < 0.7
    counts = (
        (torch.rand(batch, generator=generator) * (eligible.sum(1) + 1)).long().clamp(max=eligible.sum(1))
    )
    chosen = lowest_k(scores, eligible, counts, generator)
    assert chosen.sum(1).tolist() == counts.tolist()
    assert not (chosen & ~eligible).any()
    for row in range(batch):
        picked, rest = scores[row][chosen[row]], scores[row][eligible[row] & ~chosen[row]]
        if len(picked) and len(rest):
            assert picked.max() <= rest.min()


def test_ties_are_broken_at_random():
    # four equal scores, two chosen: different seeds must give different pairs
    scores, eligible = torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool)
    pairs = {
        tuple(lowest_k(scores, eligible, torch.tensor([2]), torch.Generator().manual_seed(s))[0].tolist())
        for s in range(40)
    }
    assert len(pairs) == 6  # every one of the C(4, 2) pairs occurs


def test_shape_mismatch_is_an_error():
    with pytest.raises(
        ValueError, match=r"scores and eligible must have one shape \(got \(2, 4\), \(2, 5\)\)"
    ):
        lowest_k(torch.zeros(2, 4), torch.ones(2, 5, dtype=torch.bool), torch.tensor([1, 1]))
