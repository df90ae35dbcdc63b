"""Simple statistics of generated token sequences: unigram entropy and n-gram repetition.

Unigram entropy is BD3-LM's degeneracy measure: the Shannon entropy (nats) of the histogram of
token ids of one sample. Natural 1024-token GPT-2 text sits around 5.6 nats; repetitive,
collapsed samples fall far below (BD3-LM rejects samples whose last 256 tokens score < 4).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from dind.sampling.stopping import batch_unigram_entropy

__all__ = ["batch_unigram_entropy", "ngrams", "repeated_ngram_rate", "text_stats", "unigram_entropy"]


def unigram_entropy(ids: Sequence[int]) -> float:
    """Entropy in nats of the token histogram of one sample; 0.0 for an empty sample."""
    counts = Counter(ids)
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return -sum(c / total * math.log(c / total) for c in counts.values())


def ngrams(ids: Sequence[int], n: int) -> list[tuple[int, ...]]:
    """All contiguous n-grams of ``ids`` in order."""
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def repeated_ngram_rate(ids: Sequence[int], n: int = 4) -> float:
    """Fraction of the sample's n-grams that repeat an n-gram seen earlier in the sample.

    0.0 when every n-gram is distinct (or the sample is shorter than n); close to 1.0 for a
    sample stuck in a loop. Equals 1 - distinct / total.
    """
    grams = ngrams(ids, n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def text_stats(samples: Sequence[Sequence[int]], *, ns: Sequence[int] = (2, 3, 4)) -> dict[str, float]:
    """Mean unigram entropy and mean repeated-n-gram rates over a set of token sequences."""
    stats = {"unigram_entropy": mean(unigram_entropy(ids) for ids in samples)}
    for n in ns:
        stats[f"repeated_{n}gram_rate"] = mean(repeated_ngram_rate(ids, n) for ids in samples)
    return stats
