"""Confidence trackers: scores at reveal time, kept until the position is revealed again."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.sampling.confidence import CONFIDENCE_TRACKERS, ConfidenceTracker, initial_scores, record_reveals

NAMES = CONFIDENCE_TRACKERS.names()


def _probs(batch: int, width: int, vocab: int, generator: torch.Generator, sharpness: float = 3.0):
    return torch.softmax(sharpness * torch.randn(batch, width, vocab, generator=generator), dim=-1)


def _one_hot(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(tokens, vocab).float()


# ---- contract: every registered tracker ----


@pytest.mark.parametrize("name", NAMES)
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 3), width=st.integers(1, 8), vocab=st.integers(2, 12))
def test_scores_shape_and_confidence_order(name, seed, batch, width, vocab):
    """(batch, width) finite float scores, ordered uniform <= any distribution <= one-hot when the
    chosen token is the most likely one: higher means more confident."""
    tracker = CONFIDENCE_TRACKERS.build(name)
    assert isinstance(tracker, ConfidenceTracker)
    generator = torch.Generator().manual_seed(seed)
    probs = _probs(batch, width, vocab, generator)
    tokens = probs.argmax(-1)
    scores = tracker.reveal_scores(probs, tokens)
    assert scores.shape == (batch, width) and scores.dtype.is_floating_point
    assert torch.isfinite(scores).all()
    uniform = tracker.reveal_scores(torch.full_like(probs, 1.0 / vocab), tokens)
    certain = tracker.reveal_scores(_one_hot(tokens, vocab), tokens)
    assert (uniform <= scores + 1e-6).all() and (scores <= certain + 1e-6).all()


@pytest.mark.parametrize("name", NAMES)
def test_record_only_changes_revealed_positions(name, generator):
    tracker = CONFIDENCE_TRACKERS.build(name)
    frozen = torch.zeros(2, 10, dtype=torch.bool)
    frozen[:, :2] = True
    scores = initial_scores(2, 10, frozen=frozen)
    revealed = torch.zeros(2, 10, dtype=torch.bool)
    revealed[0, 3], revealed[1, 5:8] = True, True
    probs = _probs(2, 10, 6, generator)
    tokens = torch.multinomial(probs.view(-1, 6), 1, generator=generator).view(2, 10)
    fresh = tracker.reveal_scores(probs, tokens)
    updated = record_reveals(scores, revealed, fresh)
    assert updated.shape == scores.shape and updated.dtype == scores.dtype
    assert torch.equal(updated[revealed], fresh[revealed])
    assert torch.equal(updated[~revealed], scores[~revealed])


# ---- initial scores and record_reveals ----


def test_initial_scores_zero_and_inf_on_frozen():
    frozen = torch.tensor([True, True, False, False, False])
    scores = initial_scores(3, 5, frozen=frozen)
    assert scores.shape == (3, 5) and scores.dtype == torch.float32
    assert torch.isposinf(scores[:, :2]).all() and (scores[:, 2:] == 0).all()
    assert (initial_scores(2, 4) == 0).all()
    per_row = torch.tensor([[True, False], [False, True]])
    assert torch.equal(torch.isinf(initial_scores(2, 2, frozen=per_row)), per_row)


@given(seed=st.integers(0, 2**31))
def test_unrevealed_scores_survive_two_records(seed):
    generator = torch.Generator().manual_seed(seed)
    scores = initial_scores(2, 12, frozen=torch.arange(12) < 1)
    first = torch.rand(2, 12, generator=generator) < 0.5
    second = torch.rand(2, 12, generator=generator) < 0.5
    a, b = torch.rand(2, 12, generator=generator), torch.rand(2, 12, generator=generator)
    after = record_reveals(record_reveals(scores, first, a), second, b)
    expected = torch.where(second, b, torch.where(first, a, scores))
    assert torch.equal(after, expected)
    # a position revealed only in the first record keeps that score after the second
    kept = first & ~second
    assert torch.equal(after[kept], a[kept])


def test_record_reveals_casts_to_the_score_dtype():
    scores = initial_scores(1, 3)
    out = record_reveals(
        scores, torch.tensor([[True, False, True]]), torch.tensor([[0.25, 9.0, 0.5]]).double()
    )
    assert out.dtype == torch.float32 and out.tolist() == [[0.25, 0.0, 0.5]]


# ---- each tracker's definition ----


@given(seed=st.integers(0, 2**31), vocab=st.integers(2, 12))
def test_snapshot_is_the_chosen_tokens_probability(seed, vocab):
    generator = torch.Generator().manual_seed(seed)
    probs = _probs(2, 5, vocab, generator)
    tokens = torch.randint(0, vocab, (2, 5), generator=generator)  # not necessarily the argmax
    scores = CONFIDENCE_TRACKERS.build("snapshot").reveal_scores(probs, tokens)
    for b in range(2):
        for j in range(5):
            assert scores[b, j].item() == pytest.approx(probs[b, j, tokens[b, j]].item(), abs=1e-7)


def test_snapshot_is_kept_after_the_distribution_changes(generator):
    # PAPER Eq. 5: the score is the probability at reveal time, not a later re-score
    tracker = CONFIDENCE_TRACKERS.build("snapshot")
    tokens = torch.tensor([[1, 2, 0]])
    at_reveal = torch.tensor([[[0.1, 0.9, 0.0], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]]])
    scores = record_reveals(
        initial_scores(1, 3), torch.ones(1, 3, dtype=torch.bool), tracker.reveal_scores(at_reveal, tokens)
    )
    later = torch.softmax(torch.randn(1, 3, 3, generator=generator), dim=-1)
    scores = record_reveals(scores, torch.zeros(1, 3, dtype=torch.bool), tracker.reveal_scores(later, tokens))
    torch.testing.assert_close(scores, torch.tensor([[0.9, 0.4, 0.6]]))


@given(seed=st.integers(0, 2**31), vocab=st.integers(2, 12))
def test_margin_is_top1_minus_top2_in_unit_interval(seed, vocab):
    generator = torch.Generator().manual_seed(seed)
    probs = _probs(2, 5, vocab, generator)
    scores = CONFIDENCE_TRACKERS.build("margin").reveal_scores(probs, probs.argmax(-1))
    ordered = probs.sort(-1, descending=True).values
    torch.testing.assert_close(scores, ordered[..., 0] - ordered[..., 1])
    assert ((scores >= 0) & (scores <= 1)).all()


def test_margin_examples():
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.7, 0.2, 0.1], [0.0, 0.0, 1.0]]])
    scores = CONFIDENCE_TRACKERS.build("margin").reveal_scores(probs, torch.tensor([[0, 0, 2]]))
    torch.testing.assert_close(scores, torch.tensor([[0.0, 0.5, 1.0]]))


@given(seed=st.integers(0, 2**31), vocab=st.integers(2, 12))
def test_negentropy_is_minus_entropy_in_its_range(seed, vocab):
    generator = torch.Generator().manual_seed(seed)
    probs = _probs(2, 5, vocab, generator)
    scores = CONFIDENCE_TRACKERS.build("negentropy").reveal_scores(probs, probs.argmax(-1))
    entropy = torch.distributions.Categorical(probs=probs.double()).entropy()
    torch.testing.assert_close(scores, (-entropy).float(), rtol=1e-5, atol=1e-6)
    assert ((scores >= -math.log(vocab) - 1e-5) & (scores <= 1e-6)).all()


def test_negentropy_handles_zero_mass_tokens():
    # MASK has zero probability: 0 * log 0 must count as 0, not NaN
    probs = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]])
    scores = CONFIDENCE_TRACKERS.build("negentropy").reveal_scores(probs, torch.tensor([[0, 0]]))
    torch.testing.assert_close(scores, torch.tensor([[-math.log(2), 0.0]]))
