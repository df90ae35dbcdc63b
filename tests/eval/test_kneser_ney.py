"""The Kneser-Ney byte judge: normalised distributions, parity with a naive dictionary
implementation of the formula, the judge's scoring rules, storage, and the shipped asset."""

import json
import math
import random
from collections import Counter, defaultdict
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.eval.byte_judge import BYTE_BOS, is_byte_judge
from dind.eval.judge import JudgeLoadError, load_judge
from dind.eval.kneser_ney import KneserNeyJudge
from dind.eval.report import evaluate

V = 257
SHIPPED = resources.files("dind") / "assets" / "judge-kn-shakespeare"
documents = st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4)


def naive_probability(docs: list[bytes], order: int, context: tuple[int, ...], word: int) -> float:
    """The interpolated modified Kneser-Ney formula, straight from occurrences with dictionaries."""
    padded = [(BYTE_BOS,) * (order - 1) + tuple(doc) for doc in docs]
    occurrences = [seq[i - order + 1 : i + 1] for seq in padded for i in range(order - 1, len(seq))]

    def values(k: int) -> dict[tuple[int, ...], int]:
        if k == order:
            return dict(Counter(gram[-k:] for gram in occurrences))
        before = defaultdict(set)
        for gram in occurrences:
            before[gram[-k:]].add(gram[-k - 1])
        return {gram: len(prev) for gram, prev in before.items()}

    def discounts(table: dict) -> list[float]:
        m = [sum(1 for c in table.values() if c == i) for i in (1, 2, 3, 4)]
        if m[0] == 0 or m[1] == 0:
            return [0.5, 0.5, 0.5]
        y = m[0] / (m[0] + 2 * m[1])
        d = [1 - 2 * y * m[1] / m[0], 2 - 3 * y * m[2] / m[1], 3 - 4 * y * m[3] / m[2] if m[2] else None]
        d[2] = d[1] if d[2] is None else d[2]
        return [min(max(x, 0.0), cap) for x, cap in zip(d, (1.0, 2.0, 3.0), strict=True)]

    p = 1.0 / V
    for k in range(1, order + 1):
        table, history = values(k), tuple(context[len(context) - (k - 1) :]) if k > 1 else ()
        d = discounts(table)
        followers = {g: c for g, c in table.items() if g[:-1] == history}
        total = sum(followers.values())
        if total == 0:
            continue
        gamma = sum(d[min(c, 3) - 1] for c in followers.values())
        count = table.get((*history, word), 0)
        p = (max(count - (d[min(count, 3) - 1] if count else 0), 0) + gamma * p) / total
    return p


def all_next(judge: KneserNeyJudge, context: list[int]) -> np.ndarray:
    return np.array([math.exp(judge.log_probs([*context, w])[-1]) for w in range(V)])


@settings(max_examples=25, deadline=None)
@given(docs=documents, order=st.integers(1, 4), context=st.lists(st.integers(0, 256), min_size=1, max_size=6))
def test_every_next_byte_distribution_sums_to_one(docs, order, context):
    judge = KneserNeyJudge.fit(docs, order=order)
    probabilities = all_next(judge, context)
    assert probabilities.min() > 0
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(docs=documents, order=st.integers(1, 4), data=st.data())
def test_probabilities_match_a_naive_dictionary_implementation(docs, order, data):
    judge = KneserNeyJudge.fit(docs, order=order)
    seen = list(random.Random(0).choice(docs))  # contexts that occur, and random ones
    context = data.draw(st.sampled_from([seen, [7, 7, 7], [BYTE_BOS], seen[::-1]]))
    word = data.draw(st.integers(0, 256))
    padded = [BYTE_BOS] * (order - 1) + [BYTE_BOS, *context]
    history = tuple(padded[len(padded) - (order - 1) :]) if order > 1 else ()
    expected = naive_probability(docs, order, history, word)
    assert math.exp(judge.log_probs([BYTE_BOS, *context, word])[-1]) == pytest.approx(expected, rel=1e-9)


def test_a_longer_order_fits_its_training_text_better():
    text = b"to be or not to be, that is the question: whether 'tis nobler in the mind to suffer " * 3
    nll = [-KneserNeyJudge.fit([text], order=n).log_probs([BYTE_BOS, *text]).mean() for n in (1, 3, 6)]
    assert nll[0] > nll[1] > nll[2]


def test_scoring_rules_match_the_neural_judge():
    judge = KneserNeyJudge.fit([b"abcabcabd"], order=3)
    ids = [BYTE_BOS, *b"abc", BYTE_BOS, *b"ab"]
    logp = judge.log_probs(ids)
    report = judge.score_ids([ids])
    assert report.num_scored_tokens == 5  # first id never a target, the EOS target not scored
    scored = [lp for lp, target in zip(logp, ids[1:], strict=True) if target != BYTE_BOS]
    assert report.sample_ppl[0] == pytest.approx(math.exp(-sum(scored) / 5))
    texts = judge.score_texts(["abc"])
    assert texts.sample_ppl == judge.score_ids([[BYTE_BOS, *b"abc"]]).sample_ppl
    assert judge.score_ids([[BYTE_BOS]]).num_scored_tokens == 0


def test_bad_ids_and_orders_are_refused_by_name():
    judge = KneserNeyJudge.fit([b"abc"], order=2)
    with pytest.raises(ValueError, match="byte-judge ids 0..256 .got 257"):
        judge.log_probs([BYTE_BOS, 257])
    for order in (0, 8, 2.5, True):
        with pytest.raises(ValueError, match="order must be an integer in 1..7"):
            KneserNeyJudge.fit([b"abc"], order=order)
    with pytest.raises(ValueError, match="at least one document"):
        KneserNeyJudge.fit([], order=2)


def test_save_and_load_give_the_same_scores(tmp_path):
    judge = KneserNeyJudge.fit([b"the quick brown fox", b"jumps over the lazy dog"], order=4)
    judge.save(tmp_path / "kn", note="test")
    loaded = load_judge(tmp_path / "kn")
    assert isinstance(loaded, KneserNeyJudge) and is_byte_judge(loaded)
    ids = [BYTE_BOS, *b"the lazy fox"]
    assert np.array_equal(loaded.log_probs(ids), judge.log_probs(ids))
    (tmp_path / "kn" / "ngrams.npz").write_bytes(b"broken")
    with pytest.raises(JudgeLoadError, match="Kneser-Ney judge"):
        load_judge(tmp_path / "kn")


def test_the_shipped_kn_judge_is_small_documented_and_prefers_real_text():
    config = json.loads((SHIPPED / "config.json").read_text())
    assert (SHIPPED / "ngrams.npz").stat().st_size <= 2_000_000
    assert config["validation_file"] == "twelfth_night.txt"
    assert "twelfth_night.txt" not in config["train_files"]
    assert f"{config['validation_nats_per_byte']:.4f} nats/byte" in (SHIPPED / "README.md").read_text()
    judge = load_judge(str(SHIPPED))
    assert judge.order == config["order"] and len(judge.ngrams) == config["distinct_ngrams"]
    text = "VIOLA. What country, friends, is this?\nCAPTAIN. This is Illyria, lady.\n" * 2
    shuffled = list(text.encode())
    random.Random(0).shuffle(shuffled)
    real = evaluate(judge, [""], tokens=[[256, *text.encode()]], byte_tokens=True)
    noise = evaluate(judge, [""], tokens=[[256, *shuffled]], byte_tokens=True)
    assert real["gen_ppl"] < 0.3 * noise["gen_ppl"]
    assert real["judge_kind"] == "kneser_ney" and real["judge_order"] == config["order"]
