"""Unigram entropy and n-gram repetition statistics."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.eval.entropy import batch_unigram_entropy, repeated_ngram_rate, text_stats, unigram_entropy


def test_unigram_entropy_known_values():
    assert unigram_entropy([]) == 0.0
    assert unigram_entropy([7] * 10) == 0.0
    assert unigram_entropy([1, 2, 3, 4]) == pytest.approx(math.log(4))
    assert unigram_entropy([1, 1, 1, 2]) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


@given(rows=st.lists(st.lists(st.integers(0, 20), min_size=5, max_size=5), min_size=1, max_size=6))
def test_batched_entropy_matches_the_per_sample_one(rows):
    batched = batch_unigram_entropy(torch.tensor(rows))
    expected = torch.tensor([unigram_entropy(row) for row in rows], dtype=torch.float64)
    torch.testing.assert_close(batched, expected)


@given(ids=st.lists(st.integers(0, 5), max_size=40))
def test_entropy_is_bounded_by_log_of_distinct_tokens(ids):
    entropy = unigram_entropy(ids)
    assert 0.0 <= entropy <= math.log(max(1, len(set(ids)))) + 1e-12


def test_repeated_ngram_rate():
    assert repeated_ngram_rate([1, 2, 3, 4, 5], n=2) == 0.0
    assert repeated_ngram_rate([1, 2, 1, 2, 1, 2], n=2) == pytest.approx(1 - 2 / 5)
    assert repeated_ngram_rate([1, 2], n=4) == 0.0
    with pytest.raises(ValueError, match=r"n must be >= 1 \(got 0\)"):
        repeated_ngram_rate([1], n=0)


def test_text_stats_keys():
    stats = text_stats([[1, 2, 3, 1, 2, 3], [4, 4]], ns=(2,))
    assert set(stats) == {"unigram_entropy", "repeated_2gram_rate"}
    assert stats["repeated_2gram_rate"] == pytest.approx(((1 - 3 / 5) + 0.0) / 2)
