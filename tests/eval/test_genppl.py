"""Gen PPL: parity with a naive per-token computation, windowing, EOS and first-token rules."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.eval.genppl import Judge, window_plan
from dind.eval.judge import JudgeLoadError, load_judge

TEXT = "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun."


@pytest.fixture(scope="module")
def judge(judge_dir):
    return load_judge(judge_dir, device="cpu", batch_size=3)


def naive_nll(model, ids, *, window, stride, eos):
    """Independent path: one forward per target, its context starting where its window starts."""
    total, count = 0.0, 0
    for j in range(1, len(ids)):
        if ids[j] == eos:
            continue
        k = max(0, math.ceil((j + 1 - window) / stride))  # first window whose end passes j
        context = torch.tensor([ids[k * stride : j]])
        with torch.no_grad():
            logits = model(input_ids=context).logits[0, -1].double()
        total -= torch.log_softmax(logits, dim=-1)[ids[j]].item()
        count += 1
    return total, count


@given(length=st.integers(0, 200), window=st.integers(2, 64), data=st.data())
def test_window_plan_scores_each_target_once_with_enough_context(length, window, data):
    stride = data.draw(st.integers(1, window - 1))
    scored = []
    for start, end, first in window_plan(length, window=window, stride=stride):
        assert 0 <= start < first <= end <= length and end - start <= window
        targets = range(first, end)
        scored.extend(targets)
        assert all(j - start >= min(j, window - stride) for j in targets)
    assert scored == list(range(1, length))


def test_per_sample_ppl_equals_naive_exp_mean_nll(judge):
    texts = [TEXT, "To be, or not to be", TEXT[:40]]
    ids = judge.tokenize(texts)
    report = judge.score_ids(ids)
    for seq, ppl in zip(ids, report.sample_ppl, strict=True):
        total, count = naive_nll(judge.model, seq, window=64, stride=32, eos=50256)
        assert ppl == pytest.approx(math.exp(total / count), rel=1e-5)
    assert report.num_samples == 3
    assert report.num_scored_tokens == sum(len(seq) - 1 for seq in ids)
    assert report.mean_sample_ppl == pytest.approx(sum(report.sample_ppl) / 3)


def test_long_text_is_windowed_like_the_naive_path(judge):
    ids = judge.tokenize([TEXT * 3])[0]
    assert len(ids) > 64  # longer than the judge's context
    report = judge.score_ids([ids])
    total, count = naive_nll(judge.model, ids, window=64, stride=32, eos=50256)
    assert report.num_scored_tokens == count == len(ids) - 1
    assert report.corpus_ppl == pytest.approx(math.exp(total / count), rel=1e-5)


def test_windowed_equals_full_scoring_when_the_text_fits(judge):
    ids = judge.tokenize([TEXT])[0]
    assert len(ids) <= 64
    with torch.no_grad():
        logits = judge.model(input_ids=torch.tensor([ids])).logits[0].double()
    nll = -torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None]).mean()
    windowed = Judge(model=judge.model, tokenizer=judge.tokenizer, device="cpu", window=64, stride=1)
    assert windowed.score_ids([ids]).sample_ppl[0] == pytest.approx(math.exp(nll.item()), rel=1e-5)


def test_eos_targets_excluded_and_first_token_not_scored(judge):
    with_eos = judge.tokenize([TEXT + "<|endoftext|>" + TEXT[:30]])[0]
    eos_positions = [j for j, t in enumerate(with_eos) if t == 50256]
    assert eos_positions  # the EOS string became the EOS id
    report = judge.score_ids([with_eos])
    assert report.num_scored_tokens == len(with_eos) - 1 - len(eos_positions)
    total, count = naive_nll(judge.model, with_eos, window=64, stride=32, eos=50256)
    assert report.sample_ppl[0] == pytest.approx(math.exp(total / count), rel=1e-5)
    # a one-token sample has nothing to score: NaN, and it does not poison the mean
    report = judge.score_ids([with_eos[:1], with_eos])
    assert math.isnan(report.sample_ppl[0]) and report.mean_sample_ppl == pytest.approx(report.sample_ppl[1])


def test_batching_and_truncation_do_not_change_scores(judge):
    texts = [TEXT * 2, "Hello", TEXT, "A rose by any other name"]
    one_by_one = Judge(model=judge.model, tokenizer=judge.tokenizer, device="cpu", batch_size=1)
    a, b = judge.score_texts(texts), one_by_one.score_texts(texts)
    assert math.isnan(a.sample_ppl[1])  # "Hello" is one token: nothing to score
    assert a.sample_ppl == pytest.approx(b.sample_ppl, rel=1e-5, nan_ok=True)
    truncated = judge.score_texts(texts, max_length=10)
    assert truncated.num_scored_tokens <= 9 * len(texts)
    assert truncated.sample_ppl[2] == pytest.approx(
        judge.score_ids([judge.tokenize([TEXT])[0][:10]]).sample_ppl[0]
    )


def test_entropy_is_reported_over_the_given_ids(judge):
    report = judge.score_texts([TEXT], entropy_ids=[[1, 1, 2, 2]])
    assert report.mean_unigram_entropy == pytest.approx(math.log(2))


def test_window_larger_than_the_judge_context_is_rejected(judge):
    too_wide = Judge(model=judge.model, tokenizer=judge.tokenizer, device="cpu", window=128)
    with pytest.raises(ValueError, match=r"window must be <= the judge's context size \(got 128, 64\)"):
        too_wide.score_texts([TEXT])


def test_missing_judge_directory_is_a_clear_error(tmp_path):
    with pytest.raises(JudgeLoadError, match="directory"):
        load_judge(tmp_path / "nowhere" / "gpt2-large")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_judge_on_cuda_matches_cpu(judge_dir, judge):
    texts = [TEXT * 3, "To be, or not to be", TEXT]
    on_gpu = load_judge(judge_dir, device="cuda", batch_size=2)
    assert on_gpu.score_texts(texts).sample_ppl == pytest.approx(
        judge.score_texts(texts).sample_ppl, rel=1e-4
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_judge_whose_loss_is_not_finite_fails_instead_of_reporting_nan(judge, bad, monkeypatch):
    from dind.errors import NonFiniteError
    from dind.eval.genppl import report_from_nll

    nll, count = torch.tensor([1.0, bad, 2.0], dtype=torch.float64), torch.tensor([3, 3, 3])
    expected = r"judge's loss is not finite \((nan|inf)\) for 1 of 3 sample.*sample 1"
    with pytest.raises(NonFiniteError, match=expected):
        report_from_nll(nll, count, [[1], [2], [3]])
    original = Judge._score_windows

    def poisoned(self, *args, **kwargs):
        nll, scored = original(self, *args, **kwargs)
        return nll * bad, scored

    monkeypatch.setattr(Judge, "_score_windows", poisoned)
    with pytest.raises(NonFiniteError, match="no report written"):
        judge.score_ids(judge.tokenize([TEXT]))


def test_gpt2_judges_project_one_window_at_a_time_with_the_same_scores(judge, monkeypatch):
    import dind.eval.genppl as genppl

    assert genppl.output_head(judge.model) is judge.model.get_output_embeddings()
    ids = judge.tokenize([TEXT * 2, TEXT[:30], "To be"])
    projected = judge.target_nll(ids)
    monkeypatch.setattr(genppl, "output_head", lambda model: None)  # the model's own logits
    full = judge.target_nll(ids)
    torch.testing.assert_close(projected[0], full[0], rtol=1e-6, atol=1e-9)
    assert torch.equal(projected[1], full[1])
