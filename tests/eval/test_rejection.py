"""dind.eval.rejection: BD3-LM's degenerate-sample test and the redraw over a result."""

import pytest
import torch

from dind.eval.rejection import low_entropy_rows, redraw_low_entropy
from dind.sampling import StagePlan, generate, regenerate_rows
from dind.sampling.oracles import MarkovOracle


def test_low_entropy_rows_uses_the_last_window_and_only_past_it():
    g = torch.Generator().manual_seed(0)
    varied = torch.randint(0, 1000, (1, 300), generator=g)
    stuck = varied.clone()
    stuck[0, -256:] = 7
    early_stuck = varied.clone()
    early_stuck[0, :40] = 7  # outside the last 256 positions
    rows = torch.cat([varied, stuck, early_stuck])
    assert low_entropy_rows(rows).tolist() == [False, True, False]
    assert low_entropy_rows(torch.full((2, 256), 7)).tolist() == [False, False]  # length <= 256


def test_low_entropy_rejection_redraws_degenerate_rows_up_to_max_retries():
    degenerate = MarkovOracle.unigram(torch.tensor([0.97, 0.01, 0.01, 0.01]))
    plan = StagePlan.parse("16")
    single = generate(degenerate, plan, length=272, batch_size=2, seed=0)
    result = redraw_low_entropy(degenerate, plan, single, max_retries=2)
    assert result.attempts.tolist() == [3, 3]
    assert result.trace[0].forward_passes == 3 * single.trace[0].forward_passes
    healthy = MarkovOracle.unigram(torch.ones(500) / 500)
    accepted = redraw_low_entropy(healthy, plan, generate(healthy, plan, length=272, batch_size=2, seed=0))
    assert accepted.attempts.tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"max_retries must be an integer >= 0 \(got -1\)"):
        redraw_low_entropy(healthy, plan, accepted, max_retries=-1)


def test_a_redrawn_row_is_reproducible_and_leaves_the_others_alone():
    oracle = MarkovOracle.unigram(torch.tensor([0.4, 0.3, 0.2, 0.1]))
    plan = StagePlan.parse("4 -> 16@0.5")
    first = generate(oracle, plan, length=16, batch_size=3, seed=5)
    again = regenerate_rows(oracle, plan, first, [1])
    assert again.attempts.tolist() == [1, 2, 1]
    assert torch.equal(again.tokens[[0, 2]], first.tokens[[0, 2]])
    assert not torch.equal(again.tokens[1], first.tokens[1])
    assert torch.equal(regenerate_rows(oracle, plan, first, [1]).tokens, again.tokens)
    with pytest.raises(ValueError, match=r"rows must be row indices in \[0, 3\) \(got \[3\]\)"):
        regenerate_rows(oracle, plan, first, [3])
