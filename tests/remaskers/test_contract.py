"""Every registered Remasker (dind's own and any plugin's, from ``REMASKERS.names()``): built with
no arguments, its keys are a (batch, length) float ranking that leaves the inputs alone, and
``remask`` turns them into exactly floor(ratio * n_eligible) eligible positions per row,
deterministic given the row generators, with row r of a batch equal to row r ranked alone.

A remasker that needs the model finds it in the context: a small deterministic denoiser here."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import REMASKERS, RemaskContext, Remasker, remask

NAMES = REMASKERS.names()
VOCAB = 8  # MASK = 8


class ToyDenoiser:
    """A cheap deterministic denoiser: each position's logits depend on its two neighbours' tokens
    (rows independent, so a row's scores do not depend on the batch)."""

    vocab_size = VOCAB + 1
    mask_id = VOCAB

    def __init__(self):
        self.table = torch.randn(VOCAB + 1, VOCAB + 1, generator=torch.Generator().manual_seed(0))

    def logits(self, tokens, *, block_size=None):
        left = torch.nn.functional.pad(tokens, (1, 0), value=self.mask_id)[:, :-1]
        right = torch.nn.functional.pad(tokens, (0, 1), value=self.mask_id)[:, 1:]
        return self.table[left] + self.table.T[right]


MODEL = ToyDenoiser()


def context(frozen: torch.Tensor, seeds: list[int]) -> RemaskContext:
    return RemaskContext(MODEL, frozen, [torch.Generator().manual_seed(s) for s in seeds])


@st.composite
def draft(draw):
    """(tokens, scores, frozen, eligible, ratio, seeds): a draft with frozen and masked positions."""
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**31))
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (batch, length), generator=generator)
    # half the cases with ties in the scores, half with distinct ones
    if draw(st.booleans()):
        scores = torch.randint(0, 3, (batch, length), generator=generator).float()
    else:
        scores = torch.rand(batch, length, generator=generator)
    frozen = torch.rand(batch, length, generator=generator) < draw(st.sampled_from([0.0, 0.2, 1.0]))
    scores = scores.masked_fill(frozen, float("inf"))  # as the sampler keeps them
    already_masked = ~frozen & (torch.rand(batch, length, generator=generator) < 0.2)
    tokens = tokens.masked_fill(already_masked, MODEL.mask_id)
    ratio = draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0)))
    seeds = [seed + row for row in range(batch)]
    return tokens, scores, frozen, ~frozen & ~already_masked, ratio, seeds


@pytest.mark.parametrize("name", NAMES)
def test_builds_without_arguments_and_follows_the_protocol(name):
    assert isinstance(REMASKERS.build(name), Remasker)


@pytest.mark.parametrize("name", NAMES)
@given(case=draft())
def test_exact_count_of_eligible_positions(name, case):
    tokens, scores, frozen, eligible, ratio, seeds = case
    keys = REMASKERS.build(name).keys(tokens, scores, eligible, context=context(frozen, seeds))
    assert keys.shape == tokens.shape and keys.is_floating_point()
    chosen = remask(REMASKERS.build(name), tokens, scores, eligible, ratio, context(frozen, seeds))
    assert chosen.shape == tokens.shape and chosen.dtype == torch.bool
    assert not (chosen & ~eligible).any()  # never frozen, never already masked
    assert chosen.sum(1).tolist() == [math.floor(ratio * n) for n in eligible.sum(1).tolist()]


@pytest.mark.parametrize("name", NAMES)
@given(case=draft())
def test_deterministic_and_a_row_equals_itself_alone(name, case):
    tokens, scores, frozen, eligible, ratio, seeds = case
    remasker = REMASKERS.build(name)
    batch = remask(remasker, tokens, scores, eligible, ratio, context(frozen, seeds))
    again = remask(remasker, tokens, scores, eligible, ratio, context(frozen, seeds))
    assert torch.equal(batch, again)
    for row, seed in enumerate(seeds):
        part = slice(row, row + 1)
        alone = remask(
            remasker, tokens[part], scores[part], eligible[part], ratio, context(frozen[part], [seed])
        )
        assert torch.equal(alone[0], batch[row])


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified(name, generator):
    tokens = torch.randint(0, VOCAB, (2, 16), generator=generator)
    scores = torch.rand(2, 16, generator=generator)
    eligible = torch.rand(2, 16, generator=generator) < 0.7
    copies = tokens.clone(), scores.clone(), eligible.clone()
    remask(REMASKERS.build(name), tokens, scores, eligible, 0.5, context(~eligible, [1, 2]))
    assert all(torch.equal(x, y) for x, y in zip((tokens, scores, eligible), copies, strict=True))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_outside_unit_interval_is_rejected(name, ratio):
    frozen = torch.zeros(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\] \(got"):
        remask(
            REMASKERS.build(name), torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), ~frozen, ratio,
            context(frozen, [0]),
        )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_nothing_eligible_selects_nothing(name):
    frozen = torch.ones(2, 8, dtype=torch.bool)
    chosen = remask(
        REMASKERS.build(name), torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8), ~frozen, 1.0,
        context(frozen, [0, 1]),
    )  # fmt: skip
    assert not chosen.any()
