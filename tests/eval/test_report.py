"""Samples files round-trip; the evaluation report agrees with the judge."""

import json

import pytest

from dind.eval.judge import load_judge
from dind.eval.report import evaluate, format_summary, read_samples, write_samples


def test_samples_round_trip(tmp_path):
    path = write_samples(tmp_path / "s.jsonl", ["a b", "c"], [[1, 2], [3]])
    assert read_samples(path) == (["a b", "c"], [[1, 2], [3]])
    assert read_samples(path, decode=str)[0] == ["[1, 2]", "[3]"]  # tokens win when they can be decoded
    path.write_text(json.dumps({"tokens": [104, 105]}) + "\n\n" + json.dumps({"text": "yo"}) + "\n")
    texts, tokens = read_samples(path, decode=lambda ids: bytes(ids).decode())
    assert texts == ["hi", "yo"] and tokens is None  # not every sample has tokens
    with pytest.raises(ValueError, match="line 1 .* must have a 'text' field \\(got keys \\['tokens'\\]\\)"):
        read_samples(path)


def test_evaluate_report(judge_dir):
    judge = load_judge(judge_dir, device="cpu")
    texts = ["Now is the winter of our discontent made glorious summer", "All the world's a stage"]
    result = evaluate(judge, texts, tokens=[[1, 2, 3, 4], [5, 5, 5, 5]])
    assert result["gen_ppl"] == pytest.approx(judge.score_texts(texts).mean_sample_ppl)
    assert result["num_samples"] == 2 and result["judge_window"] == 64 and result["judge_stride"] == 32
    assert result["repeated_2gram_rate"] == pytest.approx((0 + 2 / 3) / 2)
    assert "gen_ppl" in format_summary(result)
