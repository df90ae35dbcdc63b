"""`dind eval`: a samples file in, a printed summary and a JSON report out."""

import json

import pytest

from dind.cli import main
from dind.data.tokenizers import TOKENIZERS
from dind.eval.judge import load_judge
from dind.eval.report import decode_for_judge

TEXTS = ["Now is the winter of our discontent", "Made glorious summer by this sun of York"]


def test_eval_texts_writes_a_report(tmp_path, judge_dir, capsys):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    assert (
        main(["eval", str(samples), "--judge", str(judge_dir), "--judge-device", "cpu", "--no-progress"]) == 0
    )
    report = json.loads((tmp_path / "samples.genppl.json").read_text())
    expected = load_judge(judge_dir, device="cpu").score_texts(TEXTS)
    assert report["gen_ppl"] == pytest.approx(expected.mean_sample_ppl)
    assert report["num_samples"] == 2 and len(report["sample_ppl"]) == 2
    assert "gen_ppl" in capsys.readouterr().out


def test_eval_tokens_are_decoded_with_eos_as_the_judge_eos(tmp_path, judge_dir):
    gpt2 = TOKENIZERS.build("gpt2")
    tokens = [[gpt2.eos_id, *gpt2.encode(TEXTS[0]), gpt2.eos_id, *gpt2.encode(TEXTS[1])]]
    samples = tmp_path / "tokens.jsonl"
    samples.write_text(json.dumps({"tokens": tokens[0]}) + "\n")
    out = tmp_path / "report.json"
    main(
        [
            "eval",
            str(samples),
            "--judge",
            str(judge_dir),
            "--judge-device",
            "cpu",
            "--out",
            str(out),
            "--max-length",
            "12",
            "--no-progress",
        ]
    )
    report = json.loads(out.read_text())
    # 12 judge ids: the leading EOS is the unscored first token, the inner EOS is an excluded target
    assert report["num_scored_tokens"] == 12 - 1 - 1
    assert report["max_length"] == 12


def test_decode_for_judge_marks_document_boundaries():
    text = decode_for_judge(
        lambda ids: bytes(ids).decode(), [256, 104, 105, 256, 121, 111], eos_id=256, eos_text="<|endoftext|>"
    )
    assert text == "<|endoftext|>hi<|endoftext|>yo"


def test_judge_takes_a_shipped_judge_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"tokens": [256, *TEXTS[0].encode()]}) + "\n")
    assert main(["eval", str(samples), "--judge", "judge-kn-shakespeare", "--no-progress"]) == 0
    report = json.loads((tmp_path / "samples.genppl.json").read_text())
    assert report["judge"] == "judge-kn-shakespeare" and report["tokenizer"] == "bytes"
    assert 1 < report["gen_ppl"] < 50
