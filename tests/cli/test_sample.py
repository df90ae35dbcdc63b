"""``dind sample`` end to end on the micro DiT with the byte tokenizer."""

import argparse
import json

import pytest
import torch

from dind.cli import sample as command


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


# --- --step-mode ----------------------------------------------------------------------------------

SMALL = ["--model", "micro", "--tokenizer", "bytes", "--plan", "4 -> 16@0.5", "--length", "16",
         "--batch-size", "2", "--seed", "5", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_step_mode_reaches_generate_and_static_gives_the_dynamic_samples(tmp_path, monkeypatch):
    import dind.sampling
    from dind.models.steps import decode_step_name

    seen, generate = [], dind.sampling.generate

    def spy(*args, **kwargs):
        seen.append(decode_step_name(kwargs["options"].step))
        return generate(*args, **kwargs)

    monkeypatch.setattr(dind.sampling, "generate", spy)
    outputs = {}
    for mode in ("dynamic", "static"):
        out = tmp_path / f"{mode}.jsonl"
        assert main([*SMALL, "--out", str(out), *(["--step-mode", mode] if mode != "dynamic" else [])]) == 0
        outputs[mode] = [json.loads(line) for line in out.read_text().splitlines()]
    assert seen == ["dynamic", "static"]
    modes = [record["step_mode"] for record in outputs["dynamic"] + outputs["static"]]
    assert modes == ["dynamic"] * 2 + ["static"] * 2
    for key in ("text", "tokens", "seed", "nfe"):
        assert [r[key] for r in outputs["static"]] == [r[key] for r in outputs["dynamic"]], key


def test_a_bad_step_mode_is_argparse_s_one_line(tmp_path, capsys):
    import pytest

    from dind.cli import main as dind

    with pytest.raises(SystemExit) as stop:
        dind(["sample", *SMALL, "--out", str(tmp_path / "s.jsonl"), "--step-mode", "fast"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    choices = "'compiled', 'dynamic', 'static', 'uncached'"
    assert f"argument --step-mode: invalid choice: 'fast' (choose from {choices})" in err
    assert not (tmp_path / "s.jsonl").exists()


def test_a_cached_step_mode_with_no_cache_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import pytest

    from dind.cli import main as dind

    monkeypatch.setattr(command, "load_model", lambda *args: pytest.fail("the model must not load"))
    for mode in ("static", "compiled"):
        argv = ["sample", *SMALL, "--out", str(tmp_path / "s.jsonl"), "--step-mode", mode, "--no-cache"]
        assert dind(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err == (
            f"dind sample: error: --step-mode {mode} needs the KV cache, so it cannot be combined with "
            "--no-cache (drop --no-cache, or use --step-mode dynamic)"
        )
    assert not (tmp_path / "s.jsonl").exists()


def test_dynamic_with_no_cache_and_cached_modes_with_the_cache_are_accepted():
    for mode, use_cache, name in (
        ("dynamic", False, "uncached"),
        ("uncached", True, "uncached"),
        ("dynamic", True, "dynamic"),
        ("static", True, "static"),
        ("compiled", True, "compiled"),
    ):
        assert command.step_mode_name(argparse.Namespace(step_mode=mode, use_cache=use_cache)) == name


def test_a_half_precision_checkpoint_is_computed_in_fp32_on_cpu(tmp_path):
    # as `dind demo` does with the bf16-stored demo model; the residual stream stays fp32. One rule
    # for Python (dind.load) and the CLI (which calls it); an explicit dtype still wins
    import dind
    from dind.cli.support import load_model
    from dind.models import build, save_pretrained

    model = build("micro", init="random", generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    save_pretrained(model, tmp_path / "bf16")
    loaded = load_model(str(tmp_path / "bf16"), torch.device("cpu"))
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    expected = model.float().backbone.blocks[0].attn_qkv.weight
    assert torch.equal(loaded.backbone.blocks[0].attn_qkv.weight, expected)
    assert {p.dtype for p in dind.load(tmp_path / "bf16").parameters()} == {torch.float32}
    kept = dind.load(tmp_path / "bf16", dtype=torch.bfloat16)
    assert {p.dtype for p in kept.parameters()} == {torch.bfloat16}


def test_the_default_plan_adapts_to_the_length(tmp_path):
    # "4 -> L@0.5": a global refine block of whatever --length is (a fixed 1024 was refused at 32)
    out = tmp_path / "samples.jsonl"
    assert (
        main(["--model", "micro", "--length", "32", "--out", str(out), "--device", "cpu", "--no-progress"])
        == 0
    )
    record = json.loads(out.read_text().splitlines()[0])
    assert [stage["block_size"] for stage in record["stages"]] == [4, None] and len(record["tokens"]) == 32


def test_a_training_run_directory_samples_from_its_latest_checkpoint(tmp_path, capsys):
    from dind.models import build, save_pretrained

    model = build("micro", init="random", generator=torch.Generator().manual_seed(0), dropout=0.0)
    save_pretrained(model, tmp_path / "run" / "checkpoints" / "latest")
    (tmp_path / "run" / "config.yaml").write_text("steps: 1\n")
    out = tmp_path / "samples.jsonl"
    argv = ["--model", str(tmp_path / "run"), "--plan", "4 -> L@0.5", "--length", "16", "--out", str(out),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0 and out.is_file()
    notes = [line for line in capsys.readouterr().err.splitlines() if "training run directory" in line]
    assert notes == [f"dind: {tmp_path / 'run'} is a training run directory: loading its latest checkpoint "
                     f"{tmp_path / 'run' / 'checkpoints' / 'latest'}"]  # fmt: skip


def test_model_names_a_shipped_model_and_a_mistyped_name_lists_them(tmp_path, monkeypatch):
    from dind.cli.support import load_model
    from dind.errors import UserError

    monkeypatch.chdir(tmp_path)
    assert load_model("demo", torch.device("cpu")).vocab_size == 258
    with pytest.raises(
        UserError, match=r"--model 'dem' is neither .* nor a shipped model \(tiny-shakespeare \(= demo\)\)"
    ):
        load_model("dem", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"--model must name a model \(got 'judge-shakespeare'"):
        load_model("judge-shakespeare", torch.device("cpu"))


def test_model_errors_from_dind_load_name_the_option(tmp_path, capsys):
    from dind.cli import main as dind

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("steps: 1\n")
    assert dind(["sample", "--model", str(tmp_path / "run"), "--out", str(tmp_path / "s.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"error: --model '{tmp_path / 'run'}' is a training run directory without a checkpoint yet" in err
    assert dind(["demo", "--model", "judge-kn-shakespeare", "--out", str(tmp_path / "demo")]) == 2
    assert (
        "dind demo: error: --model must name a model (got 'judge-kn-shakespeare'" in capsys.readouterr().err
    )


def test_variable_length_records_where_and_why_each_sample_stopped(tmp_path):
    out = tmp_path / "samples.jsonl"
    argv = ["--model", "micro", "--plan", "4 -> L@0.5", "--length", "64", "--batch-size", "4", "--seed", "2",
            "--variable-length", "--stop-window", "16", "--stop-min-entropy", "3.3", "--out", str(out),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {record["stop"] for record in records} <= {"length", "eos", "low_entropy"}
    assert any(record["stop"] != "length" for record in records)  # 3.3 nats over 16 bytes stops most
    for record in records:
        assert record["length"] == len(record["tokens"]) <= 64
        assert (record["length"] == 64) == (record["stop"] == "length") or record["stop"] == "eos"


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--variable-length", "--reject-low-entropy"], "exclude each other"),
     (["--stop-min-entropy", "-1"], "--stop-min-entropy"), (["--stop-window", "0"], "--stop-window")],
)  # fmt: skip
def test_variable_length_options_are_checked(tmp_path, capsys, extra, message):
    argv = ["--model", "micro", "--length", "16", "--out", str(tmp_path / "s.jsonl"), "--no-progress", *extra]
    with pytest.raises((SystemExit, Exception)) as caught:
        main(argv)
    assert message in str(caught.value) + capsys.readouterr().err
