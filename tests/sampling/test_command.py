"""``dind sample`` end to end on the micro DiT with the byte tokenizer."""

import argparse
import json

from dind.sampling import command


def main(argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_dind_sample_writes_jsonl_with_text_tokens_and_trace(tmp_path, capsys):
    out = tmp_path / "samples.jsonl"
    argv = ["--model", "micro", "--tokenizer", "bytes", "--plan", "4 -> L@0.5:posthoc", "--length", "32",
            "--batch-size", "2", "--seed", "3", "--prompt", "Hi", "--top-p", "0.9", "--out", str(out),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["tokens"][:3] == [256, 72, 105]  # BOS (= EOS) then the prompt bytes
        assert len(record["tokens"]) == 32 and isinstance(record["text"], str)
        assert [stage["block_size"] for stage in record["stages"]] == [4, None]
        assert record["stages"][1]["remasked"] == 14  # floor(0.5 * 29)
        assert record["nfe"] == 29 + 14
    printed = capsys.readouterr().out
    assert "forward_passes" in printed and "2 samples written" in printed


def test_the_tokenizer_defaults_to_the_one_fitting_the_model(tmp_path):
    out = tmp_path / "samples.jsonl"
    argv = ["--model", "micro", "--plan", "4 -> 16@0.5", "--length", "16", "--out", str(out), "--device",
            "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["tokens"][0] == 256 and all(0 <= t < 257 for t in record["tokens"])  # bytes, BOS = EOS


def test_a_tokenizer_of_another_vocabulary_is_refused(tmp_path):
    import pytest

    argv = ["--model", "micro", "--tokenizer", "gpt2", "--length", "16", "--out", str(tmp_path / "s.jsonl")]
    with pytest.raises(ValueError, match="--tokenizer must match the model's vocabulary"):
        main(argv)
