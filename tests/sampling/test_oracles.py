"""The toy oracles are exact: brute-force enumeration agrees; their caches keep the Denoiser invariant."""

import itertools

import pytest
import torch

from dind.sampling.oracles import MarkovOracle

TRANSITION = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]])
ORACLE = MarkovOracle(torch.tensor([0.5, 0.3, 0.2]), TRANSITION)
MASK = ORACLE.mask_id


def _joint(sequence) -> float:
    p = ORACLE.initial[sequence[0]].item()
    for a, b in itertools.pairwise(sequence):
        p *= TRANSITION[a, b].item()
    return p


def _brute_force_conditional(tokens: list[int], position: int, visible: list[bool]) -> torch.Tensor:
    """p(x_position | revealed visible tokens), summing the chain's joint over every completion."""
    length = len(tokens)
    weights = torch.zeros(3, dtype=torch.float64)
    for sequence in itertools.product(range(3), repeat=length):
        if all(tokens[i] in (MASK, sequence[i]) or not visible[i] for i in range(length)):
            weights[sequence[position]] += _joint(sequence)
    return weights / weights.sum()


@pytest.mark.parametrize("block_size", [None, 2, 3])
def test_markov_oracle_matches_enumeration(block_size):
    g = torch.Generator().manual_seed(0)
    length = 6
    for _ in range(4):
        tokens = torch.randint(0, 3, (length,), generator=g).masked_fill(
            torch.rand(length, generator=g) < 0.5, MASK
        )
        probs = torch.softmax(
            ORACLE.logits(tokens[None], block_size=block_size)[0, :, :MASK].double(), dim=-1
        )
        for position in (tokens == MASK).nonzero().flatten().tolist():
            block = position // (block_size or length)
            visible = [i // (block_size or length) <= block for i in range(length)]
            expected = _brute_force_conditional(tokens.tolist(), position, visible)
            torch.testing.assert_close(probs[position], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "oracle", [ORACLE, MarkovOracle.unigram(torch.tensor([0.2, 0.8]))], ids=["markov", "unigram"]
)
def test_cached_logits_equal_the_block_causal_reference(oracle):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, oracle.mask_id, (2, 8), generator=g)
    tokens[:, 6:] = oracle.mask_id
    cache = oracle.new_cache(2, 8)
    for start in (0, 2, 4):
        oracle.append_to_cache(tokens[:, start : start + 2], cache=cache, start=start)
    cached = oracle.cached_logits(tokens[:, 6:8], cache=cache, start=6)
    torch.testing.assert_close(cached, oracle.logits(tokens, block_size=2)[:, 6:8])


def test_appending_with_a_gap_raises():
    cache = ORACLE.new_cache(1, 8)
    with pytest.raises(ValueError, match=r"no gaps \(got start 2, cached 0\)"):
        ORACLE.append_to_cache(torch.zeros(1, 2, dtype=torch.long), cache=cache, start=2)
