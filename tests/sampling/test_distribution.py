"""The sampler draws from the model's distribution: exact toy oracles, empirical frequencies.

With temperature 1 and no nucleus, any correct sampler driven by an exact denoiser must return
samples of the oracle's joint distribution, whatever the block size, unmasking order or cache
(the oracle's conditionals are exact for every reveal pattern). A remasker that ignores the
token values (random) followed by refilling from exact conditionals is a Gibbs block update, so
a two-stage plan with random remasking must preserve the distribution too.
Tolerance: total variation < 0.03 between empirical and exact frequencies, N = 10000 samples
(fixed seeds; the expected sampling error of a 16-cell pair histogram at this N is about 0.014).
"""

import pytest
import torch

from dind.remaskers import RandomRemasker
from dind.sampling import Ancestral, GenerateOptions, StagePlan, generate
from dind.sampling.oracles import MarkovOracle
from dind.sampling.plan import Stage

N = 10000
LENGTH = 8
TRANSITION = torch.tensor(
    [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]
)
MARKOV = MarkovOracle(torch.tensor([0.4, 0.3, 0.2, 0.1]), TRANSITION)
UNIGRAM = MarkovOracle.unigram(torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03]))


def _total_variation(counts: torch.Tensor, expected: torch.Tensor) -> float:
    return 0.5 * (counts.double() / counts.sum() - expected.double()).abs().sum().item()


def test_unigram_token_frequencies_match_the_oracle():
    tokens = generate(UNIGRAM, StagePlan.parse("4"), length=LENGTH, batch_size=N, seed=0).tokens
    counts = torch.bincount(tokens.flatten(), minlength=5)
    assert _total_variation(counts, UNIGRAM.probs) < 0.03


def _pair_distribution(position: int) -> torch.Tensor:
    marginal = MARKOV.marginals(LENGTH)[position]
    return (marginal[:, None] * TRANSITION).flatten()


PLANS = {
    "draft_b4": StagePlan([Stage(4)]),
    "global": StagePlan([Stage(None)]),
    "two_stage_random_remask": StagePlan(
        [Stage(2), Stage(None, remask_ratio=0.5, remasker=RandomRemasker())]
    ),
}


def _pair_variations(tokens: torch.Tensor) -> list[float]:
    """TV of the (x_i, x_i+1) histogram for a pair inside a block, one across a boundary, a late one."""
    variations = []
    for position in (0, 3, 6):
        counts = torch.bincount(tokens[:, position] * 4 + tokens[:, position + 1], minlength=16)
        variations.append(_total_variation(counts, _pair_distribution(position)))
    return variations


@pytest.mark.parametrize("plan_name", PLANS)
def test_first_hitting_pair_frequencies_match_the_chain(plan_name):
    # one reveal per step, each from its exact conditional: exact for any block size and order
    tokens = generate(MARKOV, PLANS[plan_name], length=LENGTH, batch_size=N, seed=1).tokens
    assert max(_pair_variations(tokens)) < 0.03


def test_ancestral_matches_the_unigram_oracle():
    # parallel reveals are exact when positions are independent
    tokens = generate(
        UNIGRAM,
        StagePlan([Stage(None, steps=3)]),
        length=LENGTH,
        batch_size=N,
        seed=2,
        options=GenerateOptions(unmasking=Ancestral()),
    ).tokens
    assert _total_variation(torch.bincount(tokens.flatten(), minlength=5), UNIGRAM.probs) < 0.03


def _adjacent_equal_rate(tokens: torch.Tensor) -> float:
    return (tokens[:, 0] == tokens[:, 1]).double().mean().item()


def test_ancestral_with_many_steps_approaches_the_chain_and_one_step_does_not():
    # revealing several positions at one step draws them independently (the parallel-decoding
    # factorisation error); with many steps simultaneous reveals become rare. Statistic:
    # P(x0 == x1), exactly 0.45 for the chain, 0.294 for independent draws from the marginals.
    exact = (MARKOV.initial * TRANSITION.diagonal()).sum().item()
    plan = StagePlan([Stage(None, steps=32)])
    many = generate(
        MARKOV, plan, length=LENGTH, batch_size=3000, seed=3, options=GenerateOptions(unmasking=Ancestral())
    ).tokens
    assert abs(_adjacent_equal_rate(many) - exact) < 0.03  # sd of the estimate ~0.009
    plan = StagePlan([Stage(None, steps=1)])
    one = generate(
        MARKOV, plan, length=LENGTH, batch_size=3000, seed=3, options=GenerateOptions(unmasking=Ancestral())
    ).tokens
    assert abs(_adjacent_equal_rate(one) - exact) > 0.1
