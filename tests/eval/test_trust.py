"""Evaluation trust (issue 9.8): batch-independent seeds, "/N" with a rule that ignores steps,
tokenizer/vocabulary mismatches, real line numbers, torn results lines, disk full."""

import errno
import json
import os

import pytest
import torch

import dind.eval.resumable as resumable
from dind.cli import main
from dind.errors import DataFormatError, UserError
from dind.eval.report import read_samples
from dind.eval.resumable import append_jsonl, read_jsonl_resumable
from dind.eval.sweep import SweepSettings, _generate_all
from dind.models import build
from dind.sampling import GenerateOptions, generate
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.unmasking import ConfidenceTopK


@pytest.fixture(scope="module")
def micro():
    return build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0).eval()


def _settings(num_samples=8):
    return SweepSettings(
        model="micro",
        judge="-",
        draft_block_size=4,
        length=16,
        num_samples=num_samples,
        seed=7,
        bos_id=256,
        tokenizer="bytes",
    )


def test_a_samples_tokens_do_not_depend_on_the_batch_size(micro):
    plan = StagePlan.parse("4 -> 16@0.5")
    runs = [_generate_all(micro, plan, _settings(), batch_size) for batch_size in (1, 3, 8)]
    for finals, drafts, _, _ in runs[1:]:
        assert torch.equal(finals, runs[0][0]) and torch.equal(drafts, runs[0][1])
    # and sample i equals row i of a single generate call with the int seed
    whole = generate(micro, plan, length=16, batch_size=8, seed=7, options=GenerateOptions(bos_id=256)).tokens
    assert torch.equal(whole, runs[0][0])


@pytest.mark.parametrize("text", ["4/8", "4 -> 16@0.5/4", "4/8{unmasking=confidence_threshold}"])
def test_steps_with_a_rule_that_ignores_them_is_an_error(micro, text):
    with pytest.raises(ValueError, match="ignored by the unmasking rule"):
        generate(micro, StagePlan.parse(text), length=16, batch_size=1, seed=0)


def test_steps_with_a_rule_that_uses_them_runs(micro):
    plan = StagePlan([Stage(4, steps=2, unmasking=ConfidenceTopK())])
    result = generate(micro, plan, length=16, batch_size=2, seed=0)
    assert int(result.trace[0].nfe.max()) <= 2 * 4


def test_a_torn_last_line_is_dropped_and_redone(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"plan": "a"})
    append_jsonl(path, {"plan": "b"})
    with path.open("ab") as file:
        file.write(b'{"plan": "c", "gen_p')  # killed mid-write
    assert [r["plan"] for r in read_jsonl_resumable(path)] == ["a", "b"]
    append_jsonl(path, {"plan": "c"})
    assert [json.loads(line)["plan"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_damage_before_the_last_line_is_an_error_naming_it(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"plan": "a"}\n\nnot json\n{"plan": "b"}\n')
    with pytest.raises(DataFormatError, match="line 3"):
        read_jsonl_resumable(path)


def test_disk_full_while_appending_says_so_and_keeps_complete_lines(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"plan": "a"})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(resumable.os, "fsync", full)
    with pytest.raises(UserError, match="disk full"):
        append_jsonl(path, {"plan": "b"})
    monkeypatch.undo()
    assert read_jsonl_resumable(path)[0] == {"plan": "a"}


def test_a_malformed_samples_line_reports_its_real_line_number(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a"}\n\n\n{"text": "b"\n')
    with pytest.raises(ValueError, match="line 4 .* not valid JSON"):
        read_samples(path)


def _samples(tmp_path, rows):
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"tokens": row}) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "tokenizer", "message"),
    [
        ([[256, 72, 257]], "bytes", "MASK id"),
        ([[256, 72, 300]], "bytes", "outside the 'bytes'"),
        ([[256, -1]], "bytes", "outside"),
        ([[256, *range(70, 140)]], "gpt2", "looks like the 'bytes' tokenizer"),
    ],
)
def test_eval_refuses_ids_outside_the_tokenizer(tmp_path, judge_dir, capsys, rows, tokenizer, message):
    path = _samples(tmp_path, rows)
    code = main(["eval", str(path), "--judge", str(judge_dir), "--tokenizer", tokenizer, "--no-progress"])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s.genppl.json").exists()


def test_eval_refuses_to_overwrite_a_report_and_disk_full_says_so(tmp_path, judge_dir, capsys, monkeypatch):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"text": "hello there"}) + "\n")
    report = tmp_path / "s.genppl.json"
    report.write_text("{}")
    assert main(["eval", str(path), "--judge", str(judge_dir), "--no-progress"]) != 0
    assert report.read_text() == "{}"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    assert main(["eval", str(path), "--judge", str(judge_dir), "--no-progress", "--overwrite"]) != 0
    assert "disk full" in capsys.readouterr().err
    assert report.read_text() == "{}"


def test_sweep_with_zero_samples_is_a_clear_error(tmp_path, capsys):
    argv = [
        "sweep",
        "--model",
        "micro",
        "--judge",
        str(tmp_path),
        "--num-samples",
        "0",
        "--out",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as stop:  # argparse's usage error: the one shared positive_int type
        main(argv)
    assert stop.value.code == 2
    assert "argument --num-samples: invalid positive integer value: '0'" in capsys.readouterr().err
