"""BD3-LM's nucleus rule and the token proposal."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.sampling.nucleus import nucleus_filter, nucleus_keep
from dind.sampling.proposal import ProposalOptions, draw_gumbel, propose

distributions = st.lists(st.floats(0.001, 1.0), min_size=1, max_size=30, unique=True).map(
    lambda weights: torch.tensor(weights, dtype=torch.float64) / sum(weights)
)


def _bd3lm_set(probs: torch.Tensor, top_p: float) -> set[int]:
    """The rule, spelled out one token at a time: walk tokens by decreasing probability and keep
    each while the running total (including it) is <= p; the first one is always kept."""
    kept, total = set(), 0.0
    for rank, token in enumerate(sorted(range(len(probs)), key=lambda i: -probs[i].item())):
        total += probs[token].item()
        if rank == 0 or total <= top_p:
            kept.add(token)
    return kept


@given(probs=distributions, top_p=st.floats(0.01, 0.999))
def test_nucleus_keeps_the_bd3lm_set(probs, top_p):
    kept = nucleus_keep(probs, top_p)
    assert set(kept.nonzero().flatten().tolist()) == _bd3lm_set(probs, top_p)
    assert kept[probs.argmax()]


@given(seed=st.integers(0, 2**31 - 1), sharpness=st.floats(0.1, 8.0), top_p=st.floats(0.05, 0.99))
def test_partial_sorts_give_the_full_sort_set_on_a_large_vocabulary(seed, sharpness, top_p):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(3, 3000, generator=g, dtype=torch.float64) * sharpness, dim=-1)
    ordered, order = torch.sort(probs, dim=-1, descending=True)
    keep_sorted = ordered.cumsum(dim=-1) <= top_p
    keep_sorted[:, 0] = True
    expected = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
    assert torch.equal(nucleus_keep(probs, top_p), expected)


@given(probs=distributions, top_p=st.floats(0.01, 1.0))
def test_nucleus_filter_is_a_distribution_on_the_kept_set(probs, top_p):
    filtered = nucleus_filter(probs, top_p)
    assert filtered.dtype == torch.float64
    torch.testing.assert_close(filtered.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert ((filtered > 0) == nucleus_keep(probs, top_p)).all()


def test_top_p_one_keeps_everything_even_with_rounding():
    probs = torch.full((3, 1000), 1e-3, dtype=torch.float64)
    assert nucleus_keep(probs, 1.0).all()


def test_nucleus_rejects_bad_top_p():
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\] \(got 0.0\)"):
        nucleus_keep(torch.ones(3) / 3, 0.0)


def test_proposal_never_picks_mask_or_outside_the_nucleus(generator):
    logits = torch.randn(2000, 12, generator=generator)
    logits[:, -1] = 50.0  # MASK (last id) would win without the -inf
    gumbel = draw_gumbel(torch.randint(-(2**62), 2**62, (2000,), generator=generator), 12)
    tokens = propose(logits, gumbel, mask_id=11, options=ProposalOptions(top_p=0.5))
    probs = torch.softmax(logits[:, :-1].double(), dim=-1)
    assert nucleus_keep(probs, 0.5).gather(1, tokens[:, None]).all()


def test_proposal_matches_the_tempered_distribution(generator):
    logits = torch.tensor([[0.0, 1.0, 2.0, 9.0]]).expand(40000, -1)
    gumbel = draw_gumbel(torch.arange(40000), 4)  # adjacent keys: independent lines
    tokens = propose(logits, gumbel, mask_id=3, options=ProposalOptions(temperature=2.0))
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]) / 2.0, dim=0)
    frequency = torch.bincount(tokens, minlength=3).double() / 40000
    assert (frequency - expected).abs().sum() / 2 < 0.01


def test_draw_gumbel_lines_depend_only_on_their_own_key():
    keys = torch.tensor([5, -7, 2**62, 11])
    both = draw_gumbel(keys, 5)
    assert torch.equal(both[1:3], draw_gumbel(keys[1:3], 5))
    assert torch.isfinite(both).all() and both.dtype == torch.float64
    with pytest.raises(ValueError, match=r"keys must be a \(positions,\) int64 tensor"):
        draw_gumbel(keys.float(), 5)


def test_proposal_options_validate():
    with pytest.raises(ValueError, match=r"temperature must be > 0 \(got 0.0\)"):
        ProposalOptions(temperature=0.0)
