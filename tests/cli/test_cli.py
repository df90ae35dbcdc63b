"""The ``dind`` command: one error handler, --debug, --plugin, --overwrite, Ctrl-C, a light --help."""

from __future__ import annotations

import errno
import statistics
import subprocess
import sys
import time
import types

import pytest
import torch

import dind.cli.sample as sample_command
import dind.sampling.block_sampler as block_sampler
from dind.cli import main
from dind.errors import ConfigError, DataFormatError, NonFiniteError, OutputExistsError, UserError
from dind.registry import RegistryError

SAMPLE = ["sample", "--model", "micro", "--tokenizer", "bytes", "--plan", "4 -> 16@0.5", "--length", "16",
          "--device", "cpu", "--no-progress"]  # fmt: skip


def one_error_line(capsys, command: str = "sample") -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"dind {command}: error: "), err
    return err.removeprefix(f"dind {command}: error: ")


# --- the handler -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (UserError("bad thing"), 1, "bad thing"),
        (
            ConfigError("steps must be a positive integer (got 0)"),
            2,
            "steps must be a positive integer (got 0)",
        ),
        (ValueError("length must\n  divide"), 2, "length must divide"),
        (TypeError("plan must be a StagePlan"), 2, "plan must be a StagePlan"),
        (DataFormatError("x.jsonl line 3: not JSON"), 1, "x.jsonl line 3: not JSON"),
        (OutputExistsError("--out x exists; pass --overwrite"), 1, "--out x exists; pass --overwrite"),
        (NonFiniteError("NaN logits"), 1, "NaN logits"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "ckpt/config.json"), 1,
         "No such file or directory: ckpt/config.json"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "runs"), 1, "Is a directory: runs"),
        (RegistryError("unknown remasker 'x' (known: random, snapshot)"), 2,
         "unknown remasker 'x' (known: random, snapshot)"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (RuntimeError("boom"), 1,
         "internal error: RuntimeError: boom (run again with --debug for the traceback; please report it)"),
        (KeyError("weight"), 1, "internal error: KeyError: 'weight' (run again with --debug"),
    ],
)  # fmt: skip
def test_every_error_is_one_line_with_its_exit_status(monkeypatch, capsys, error, status, message):
    def fail(args):
        raise error

    monkeypatch.setattr(sample_command, "run", fail)
    assert main(["sample"]) == status
    assert one_error_line(capsys).startswith(message)


@pytest.mark.parametrize("argv", [["--debug", "sample"], ["sample", "--debug"]])
def test_debug_before_or_after_the_subcommand_reraises(monkeypatch, argv):
    def fail(args):
        raise ValueError("shown with its traceback")

    monkeypatch.setattr(sample_command, "run", fail)
    with pytest.raises(ValueError, match="shown with its traceback"):
        main(argv)


def test_usage_errors_keep_argparse_usage_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["sample", "--length", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "usage: dind sample" in err and "argument --length: invalid positive integer value: '0'" in err
    with pytest.raises(SystemExit):
        main(["smaple"])
    assert "invalid choice: 'smaple'" in capsys.readouterr().err


# --- plugins -----------------------------------------------------------------------------------


def test_plugins_load_in_order_before_the_subcommand_runs(monkeypatch):
    calls = []
    fake = types.ModuleType("dind.plugins")
    fake.load_plugin = calls.append
    monkeypatch.setitem(sys.modules, "dind.plugins", fake)
    monkeypatch.setattr(sample_command, "run", lambda args: calls.append("run") or 0)
    assert main(["--plugin", "a.b", "--plugin", "c.py", "sample", "--plugin", "d"]) == 0
    assert calls == ["a.b", "c.py", "d", "run"]


@pytest.mark.parametrize("argv", [["--threads", "1", "sample"], ["sample", "--threads", "1"]])
def test_threads_sets_torch_threads_before_the_subcommand_runs(monkeypatch, argv):
    import torch

    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(sample_command, "run", lambda args: seen.append(torch.get_num_threads()) or 0)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_threads_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--threads", value, "list"])
    assert stop.value.code == 2
    assert f"--threads: must be a positive integer (got '{value}')" in capsys.readouterr().err


def test_a_failing_plugin_is_one_line(monkeypatch, capsys):
    fake = types.ModuleType("dind.plugins")

    def load_plugin(spec):
        raise UserError(f"--plugin {spec}: no module named {spec!r}")

    fake.load_plugin = load_plugin
    monkeypatch.setitem(sys.modules, "dind.plugins", fake)
    assert main(["--plugin", "nope", "list"]) == 1
    assert one_error_line(capsys, "list") == "--plugin nope: no module named 'nope'"


def test_plugin_without_the_plugins_module_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dind.plugins", None)  # import raises ModuleNotFoundError
    assert main(["--plugin", "x", "list"]) == 1
    assert "--plugin is not supported" in one_error_line(capsys, "list")


# --- sample: outputs, Ctrl-C, non-finite logits ------------------------------------------------


def test_an_existing_output_is_refused_before_any_sampling(tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.jsonl"
    out.write_text("earlier results\n")

    def no_model(*args, **kwargs):
        raise AssertionError("the output must be checked before the model loads")

    monkeypatch.setattr(sample_command, "load_model", no_model)
    assert main([*SAMPLE, "--out", str(out)]) == 1
    message = one_error_line(capsys)
    assert message.startswith(f"--out {out} already exists; pass --overwrite")
    assert out.read_text() == "earlier results\n"


def test_overwrite_replaces_and_leaves_no_scratch_file(tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text("earlier results\n")
    assert main([*SAMPLE, "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith('{"text"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl"]


@pytest.mark.parametrize("where", ["directory", "under_a_file"])
def test_unusable_output_paths_are_one_line(tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    out = tmp_path if where == "directory" else tmp_path / "file" / "s.jsonl"
    assert main([*SAMPLE, "--out", str(out)]) == 1
    expected = "is an existing directory" if where == "directory" else "is not a directory"
    assert expected in one_error_line(capsys)


def test_ctrl_c_inside_the_sampling_loop_leaves_no_file(tmp_path, monkeypatch, capsys):
    fill = block_sampler._fill_block
    blocks = []

    def interrupted(*args, **kwargs):
        blocks.append(1)
        if len(blocks) == 2:
            raise KeyboardInterrupt
        return fill(*args, **kwargs)

    monkeypatch.setattr(block_sampler, "_fill_block", interrupted)
    out = tmp_path / "sub" / "s.jsonl"
    assert main([*SAMPLE, "--out", str(out)]) == 130
    assert one_error_line(capsys) == "interrupted"
    assert len(blocks) == 2 and list((tmp_path / "sub").iterdir()) == []


def test_ctrl_c_while_writing_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    import json

    written = []

    def dumps(record):
        written.append(record)
        if len(written) == 2:  # the first line is already in the (scratch) file
            raise KeyboardInterrupt
        return json.dumps(record)

    monkeypatch.setattr(sample_command, "json", types.SimpleNamespace(dumps=dumps))
    out = tmp_path / "s.jsonl"
    assert main([*SAMPLE, "--batch-size", "2", "--out", str(out)]) == 130
    assert one_error_line(capsys) == "interrupted"
    assert len(written) == 2 and list(tmp_path.iterdir()) == []


class NaNModel(torch.nn.Module):
    """Wraps a model; its logits are NaN from the first forward of a global block."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.vocab_size, self.mask_id = inner, inner.vocab_size, inner.mask_id

    def logits(self, tokens, *, block_size=None):
        out = self.inner.logits(tokens, block_size=block_size)
        return out.fill_(float("nan")) if block_size is None else out

    def new_cache(self, *args):
        return self.inner.new_cache(*args)

    def cached_logits(self, block, *, cache, start):
        return self.inner.cached_logits(block, cache=cache, start=start)

    def append_to_cache(self, block, *, cache, start):
        self.inner.append_to_cache(block, cache=cache, start=start)


def test_nan_logits_through_the_cli_exit_1_without_output(tmp_path, monkeypatch, capsys):
    load = sample_command.load_model
    monkeypatch.setattr(sample_command, "load_model", lambda spec, device: NaNModel(load(spec, device)))
    out = tmp_path / "s.jsonl"
    assert main([*SAMPLE, "--out", str(out)]) == 1
    message = one_error_line(capsys)
    assert message.startswith("the model produced non-finite logits (stage 2, block [0, 16): ")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "status", "needle"),
    [
        (["--plan", "4 -> 16@0.5{top_p=0.9,top_p=0.8}"], 2, "option 'top_p' is given more than once"),
        (["--plan", "4 -> 16@0.01"], 2, "stage 2: remask_ratio 0.01 remasks no position"),
        (["--plan", "5 -> 16@0.5"], 2, "stage 1: block_size must divide length (got 5, length 16)"),
        (["--tracker", "nope"], 2, "nope"),
        (["--unmasking", "nope"], 2, "nope"),
        (["--prompt", "x" * 20], 2, "prompt is too long: 21 frozen tokens (BOS included)"),
        (
            ["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "nodevice"],
            1,
            "--device",
        ),
        (["--model", "/nonexistent/ckpt"], None, "/nonexistent/ckpt"),
    ],
)
def test_bad_sample_inputs_are_one_line(tmp_path, capsys, extra, status, needle):
    code = main([*SAMPLE, "--out", str(tmp_path / "s.jsonl"), *extra])
    assert code != 0 and (status is None or code == status)
    assert needle in one_error_line(capsys)
    assert not (tmp_path / "s.jsonl").exists()


# --- demo --------------------------------------------------------------------------------------


def test_demo_refuses_existing_outputs_and_ctrl_c_leaves_none(tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "trace.json").write_text("{}")
    assert main(["demo", "--out", str(out), "--length", "16", "--plan", "4 -> 16@0.5"]) == 1
    assert one_error_line(capsys, "demo").startswith(f"--out {out / 'trace.json'} already exists")

    import dind.sampling

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dind.sampling, "generate", interrupted)
    fresh = tmp_path / "fresh"
    assert main(["demo", "--out", str(fresh), "--length", "16", "--plan", "4 -> 16@0.5"]) == 130
    assert one_error_line(capsys, "demo") == "interrupted"
    assert list(fresh.iterdir()) == []


# --- startup: --help imports no torch, and answers fast -----------------------------------------


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_building_the_parser_imports_no_torch_or_matplotlib():
    heavy = _python(
        "import sys\n"
        "from dind.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = {'torch', 'matplotlib', 'numpy', 'transformers'}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & heavy)))"
    )
    assert heavy.strip() == ""


def test_dind_help_answers_in_under_half_a_second():
    command = [sys.executable, "-m", "dind", "--help"]
    subprocess.run(command, check=True, capture_output=True)  # warm-up: the file system cache
    times = []
    for _ in range(3):
        begin = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - begin)
    assert "sample" in done.stdout and "--plugin" in done.stdout
    assert statistics.median(times) < 0.5, times


def test_importing_plots_keeps_the_matplotlib_backend():
    state = _python(
        "import matplotlib, sys\n"
        "matplotlib.use('svg')\n"
        "import dind.eval.plots as plots\n"
        "import numpy as np, io\n"
        "figure = plots.stage_trace_figure(np.random.rand(2, 8), np.zeros((2, 8), bool), ['a', 'b'])\n"
        "buffer = io.BytesIO(); figure.savefig(buffer, format='png')\n"
        "png = buffer.getvalue()[:4] == b'\\x89PNG'\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules, png)"
    )
    assert state.split() == ["svg", "False", "True"]


def test_list_names_the_shipped_models_and_judges(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "shipped models (--model, dind.load): tiny-shakespeare (= demo)" in lines
    assert "shipped judges (--judge, dind.eval.load_judge): judge-kn-shakespeare, judge-shakespeare" in lines


# --- the oversubscription note -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("busy", "cores", "threads", "suggested"),
    [(0.3, 2, 2, None), (1.2, 2, 2, 1), (3.8, 2, 2, 1), (2.0, 8, 8, 6), (5.0, 4, 1, None), (0.0, 4, 4, None)],
)
def test_the_note_suggests_the_free_cores_when_threads_exceed_them(busy, cores, threads, suggested):
    import dind.cli as cli

    note = cli.thread_note(busy, cores, threads)
    if suggested is None:
        assert note is None
    else:
        assert f"load {busy:.1f} on {cores} cores" in note and f"use {threads} threads" in note
        assert note.endswith(f"pass --threads {suggested} (e.g. dind --threads {suggested} ...)")


@pytest.mark.parametrize(
    ("argv", "env", "noted"),
    [
        (["sample"], {}, True),
        (["sample", "--threads", "2"], {}, False),  # the user chose
        (["--threads", "1", "sample"], {}, False),
        (["sample"], {"OMP_NUM_THREADS": "2"}, False),
        (["list"], {}, False),  # no numerical work
    ],
)
def test_an_oversubscribed_cpu_is_noted_once_unless_the_user_chose_the_threads(
    monkeypatch, capsys, argv, env, noted
):
    import dind.cli as cli

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli, "busy_cores", lambda: 3.5)
    monkeypatch.setattr(cli, "_cores", lambda: 2)
    monkeypatch.setattr(sample_command, "run", lambda args: 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(before)
    notes = [line for line in capsys.readouterr().err.splitlines() if "this CPU is shared" in line]
    assert len(notes) == (1 if noted else 0)


def test_busy_cores_is_the_load_average_capped_by_the_tasks_running_now():
    import os

    import dind.cli as cli

    busy = cli.busy_cores()
    if not hasattr(os, "getloadavg"):
        assert busy is None
        return
    assert 0.0 <= busy <= os.getloadavg()[0] + 1.0  # the load may move between the two reads


def test_sigterm_is_handled_like_ctrl_c(tmp_path, capsys):
    import signal

    plugin = tmp_path / "terminate.py"
    plugin.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    before = signal.getsignal(signal.SIGTERM)
    assert main(["--plugin", str(plugin), "list"]) == 143
    assert "dind list: error: terminated (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the command
