"""`dind nelbo`: a checkpoint and text in, a printed summary and a JSON report out; bad inputs are
one line naming the parameter."""

import json
from pathlib import Path

import pytest
import torch

from dind.cli import main
from dind.data import TOKENIZERS
from dind.models import build, save_pretrained
from dind.training.likelihood import LikelihoodOptions, likelihood, text_chunks

SHAKESPEARE = Path(__file__).resolve().parents[2] / "data" / "shakespeare"
POEM = str(SHAKESPEARE / "phoenix_and_the_turtle.txt")  # ~2.5 KB


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A micro model (length 128) whose config.json records no block size."""
    directory = tmp_path_factory.mktemp("micro")
    model = build("micro", init="random", generator=torch.Generator().manual_seed(0), dropout=0.0)
    save_pretrained(model, directory)
    config = json.loads((directory / "config.json").read_text())
    del config["block_size"]
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def nelbo_argv(checkpoint, *extra, num_batches="2"):
    return ["nelbo", "--model", str(checkpoint), "--data", POEM, "--length", "32", "--batch-size", "2",
            "--num-batches", num_batches, "--device", "cpu", "--no-progress", *extra]  # fmt: skip


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("dind nelbo: error: "), err
    return err.removeprefix("dind nelbo: error: ")


def test_nelbo_writes_a_report_matching_the_library(checkpoint, tmp_path, capsys):
    out = tmp_path / "nelbo.json"
    argv = nelbo_argv(checkpoint, "--block-size", "4", "--block-size", "L", "--seed", "3", "--out", str(out))
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [r["block_size"] for r in report["results"]] == [4, 32]
    assert [r["global"] for r in report["results"]] == [False, True]
    assert report["length"] == 32 and report["num_batches"] == 2 and report["seed"] == 3
    assert report["noise"]["time_range"] == [1e-3, 1.0] and report["tokenizer"] == "bytes"
    assert {"device", "cpus", "torch"} <= set(report["machine"])
    from dind.models import load

    model = load(checkpoint, device="cpu")
    chunks = text_chunks([POEM], TOKENIZERS.build("bytes"), 32)
    expected = likelihood(model, chunks, [4, 32], LikelihoodOptions(batch_size=2, num_batches=2, seed=3))
    for row, result in zip(report["results"], expected, strict=True):
        assert row["nelbo"] == pytest.approx(result.nelbo)
        assert row["ppl_bound"] == pytest.approx(result.ppl_bound)
        assert row["tokens"] == 2 * 2 * 32
    printed = capsys.readouterr().out
    assert "block            4: NELBO" in printed and "(global)" in printed and str(out) in printed


def test_default_block_size_and_length_come_from_the_config(tmp_path, capsys):
    model = build("micro", init="random", generator=torch.Generator().manual_seed(0), block_size=8)
    save_pretrained(model, tmp_path / "b8")
    argv = ["nelbo", "--model", str(tmp_path / "b8"), "--data", POEM, "--num-batches", "1",
            "--batch-size", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "block            8: NELBO" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["length"] == 128  # micro's model_length


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        (["--block-size", "5"], 2, "--block-size must divide the length (got 5, length 32)"),
        (["--block-size", "64"], 2, "--block-size must divide the length (got 64, length 32)"),
        (["--block-size", "4", "--block-size", "4"], 2, "--block-size must not repeat a size (got [4, 4])"),
        ([], 2, "--block-size is required: the model's config.json records no block_size"),
        (["--block-size", "4", "--length", "256"], 2,
         "--length must be <= the model's model_length (got 256, 128)"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_naming_the_parameter(checkpoint, capsys, extra, status, message):
    assert main(nelbo_argv(checkpoint, *extra)) == status
    assert one_error_line(capsys).startswith(message)


def test_more_batches_than_the_data_holds_is_an_error(checkpoint, capsys):
    assert main(nelbo_argv(checkpoint, "--block-size", "4", num_batches="1000")) == 2
    message = one_error_line(capsys)
    assert message.startswith("--num-batches must be <= the batches the data holds (got 1000; ")


def test_bad_data_is_one_line_naming_data(checkpoint, tmp_path, capsys):
    argv = nelbo_argv(checkpoint, "--block-size", "4")
    at = argv.index(POEM)
    (tmp_path / "empty").mkdir()
    (tmp_path / "short.txt").write_text("too short")
    cases = {
        str(tmp_path / "missing.txt"): "--data must name existing files or directories (got ",
        str(tmp_path / "empty"): "--data: no file matches pattern '*.txt'",
        str(tmp_path / "short.txt"): "--data must hold at least one chunk of --length 32 tokens (got 10 ",
    }
    for path, message in cases.items():
        assert main([*argv[:at], path, *argv[at + 1 :]]) == 2
        assert one_error_line(capsys).startswith(message)


def test_block_size_must_be_a_number_or_l(checkpoint, capsys):
    with pytest.raises(SystemExit) as stop:
        main(nelbo_argv(checkpoint, "--block-size", "x"))
    assert stop.value.code == 2
    rule = "block size (a positive integer, or L for one global block)"
    assert f"invalid {rule} value: 'x'" in capsys.readouterr().err


def test_compare_pairs_two_models_over_the_same_sequences_and_noise(checkpoint, tmp_path, capsys):
    """--compare: this model minus a reference report's, paired per sequence; the same model gives
    zero differences, another model a paired difference that equals the difference of the means."""
    other = tmp_path / "other"
    model = build("micro", init="random", generator=torch.Generator().manual_seed(1), dropout=0.0)
    save_pretrained(model, other)
    first = tmp_path / "first.json"
    base = ["--block-size", "4", "--block-size", "L", "--num-batches", "3"]
    assert main([*nelbo_argv(checkpoint, *base[:4]), "--num-batches", "3", "--out", str(first)]) == 0
    reference = json.loads(first.read_text())
    assert all(len(row["per_sequence"]) == 6 for row in reference["results"])
    capsys.readouterr()
    second = tmp_path / "second.json"
    argv = [
        *nelbo_argv(other, *base[:4]),
        "--num-batches",
        "3",
        "--compare",
        str(first),
        "--out",
        str(second),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"this model minus {first}, paired over sequences" in printed
    compare = json.loads(second.read_text())["compare"]
    mine = json.loads(second.read_text())["results"]
    for row, a, b in zip(compare["differences"], mine, reference["results"], strict=True):
        assert row["block_size"] == a["block_size"] and row["n"] == 6
        assert row["mean"] == pytest.approx(a["nelbo"] - b["nelbo"])
        assert row["verdict"] in ("lower", "higher", "no difference")
    # another seed draws other noise: not a paired comparison, refused before anything is scored
    assert (
        main([*nelbo_argv(other, *base[:4]), "--num-batches", "3", "--seed", "1", "--compare", str(first)])
        == 2
    )
    assert one_error_line(capsys).startswith(
        "--compare must be a report on the same chunks and noise (differs in: seed 0 (this run: 1))"
    )
    (tmp_path / "bad.json").write_text("{}")
    assert main([*nelbo_argv(other, "--block-size", "4"), "--compare", str(tmp_path / "bad.json")]) == 2
    assert one_error_line(capsys).startswith("--compare must be a JSON report of dind nelbo --out")
