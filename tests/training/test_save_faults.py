"""Faults during a checkpoint save: a full disk stops training with one line naming the step and the
checkpoint still intact, leaving no scratch; a kill during the very first save leaves a run that
``--resume`` starts again from step 0 (scratch removed, no "already holds a run" refusal)."""

import errno
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from dind.cli import main
from dind.errors import OutputExistsError
from dind.training import build_trainer, find_checkpoint, read_trainer_state
from dind.training import checkpointing as ckpt
from dind.training.metrics import read_metrics
from dind.training.rundir import check_out_dir, nothing_saved, restartable

FAST = ("eval_every=null", "save_every=2", "steps=4")


def _config_file(make_config, tmp_path, *overrides):
    path = tmp_path / "config.yaml"
    path.write_text(make_config(*FAST, *overrides).to_yaml())
    return str(path)


def _scratch(run):
    return sorted(p.name for p in (run / "checkpoints").glob(".*.tmp-*"))


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _torch_no_space(*args, **kwargs):
    try:
        _no_space()
    except OSError:  # what torch.save raises when its writer's OSError escapes
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None


def _full_on_call(fail_at, fake, real):
    calls = []

    def write(*args, **kwargs):
        calls.append(1)
        return fake(*args, **kwargs) if len(calls) == fail_at else real(*args, **kwargs)

    return write


@pytest.mark.parametrize("fault", [_no_space, _torch_no_space], ids=["OSError", "torch RuntimeError"])
def test_disk_full_during_a_save_names_the_step_and_the_intact_checkpoint(
    make_config, tmp_path, monkeypatch, capsys, fault
):
    config = _config_file(make_config, tmp_path)
    monkeypatch.setattr(torch, "save", _full_on_call(2, fault, torch.save))  # step 2 saves; step 4 fails
    assert main(["train", "--config", config]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after any "dind: note: this CPU is shared"
    run = tmp_path / "run"
    latest = run / "checkpoints" / "latest"
    assert err == (
        f"dind train: error: no space left on device while saving step 4 to {latest} (its partial copy was "
        f"removed); the last intact checkpoint is {latest}, step 2: free some space, then continue with "
        "--resume"
    )
    assert read_trainer_state(find_checkpoint(run))["step"] == 2
    assert _scratch(run) == [] and sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest"]


def test_disk_full_during_the_first_save_and_in_the_kept_copy(make_config, tmp_path, monkeypatch, capsys):
    config = _config_file(make_config, tmp_path, "steps=2")
    monkeypatch.setattr(torch, "save", _full_on_call(1, _no_space, torch.save))
    assert main(["train", "--config", config]) == 1
    err = capsys.readouterr().err
    assert (
        "no space left on device while saving step 2" in err
        and "no checkpoint of this run is complete" in err
    )
    assert _scratch(tmp_path / "run") == []
    monkeypatch.undo()  # space freed: --resume starts again (nothing was saved)
    monkeypatch.setattr(shutil, "copytree", _no_space)  # the kept copy step-0000002 fails
    assert main(["train", "--config", config, "keep_every=2", "--resume"]) == 1
    err = capsys.readouterr().err
    kept = tmp_path / "run" / "checkpoints" / "step-0000002"
    assert f"saving step 2 to {kept} (its partial copy was removed); the last intact checkpoint is" in err
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 2
    assert _scratch(tmp_path / "run") == [] and not kept.exists()


def test_other_save_errors_are_not_called_disk_full(make_config, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="Input/output error"):
        build_trainer(make_config(*FAST, "steps=2")).fit()
    assert ckpt.is_disk_full(OSError(errno.ENOSPC, "x"))
    assert not ckpt.is_disk_full(RuntimeError("unexpected pos 704 vs 598"))


KILLED_IN_FIRST_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import dind.models.checkpoint
    from dind.cli import main

    def killed(model, directory, **options):  # the first save is killed half-way through the weights
        directory.mkdir(parents=True)
        (directory / "model.safetensors").write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)

    dind.models.checkpoint.save_pretrained = killed
    sys.exit(main(["train", "--config", sys.argv[1]]))
    """
)


def test_resume_after_a_kill_during_the_first_save_starts_cleanly(make_config, tmp_path, capsys):
    config = _config_file(make_config, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_FIRST_SAVE, config], env=env, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    run = tmp_path / "run"
    assert len(_scratch(run)) == 1 and (run / "config.yaml").is_file() and (run / ".lock").is_file()
    assert nothing_saved(run) and restartable(run, run)
    with pytest.raises(OutputExistsError, match="already holds a run; pass --resume"):
        check_out_dir(run, resume_from=None, overwrite=False)  # without --resume: still refused
    shutil.copytree(run, tmp_path / "copy-a")
    shutil.copytree(run, tmp_path / "copy-b")
    for argv, where in [
        (["--config", config, "--resume"], run),  # bare --resume: out_dir's latest, if any
        (["--resume", str(tmp_path / "copy-a")], tmp_path / "copy-a"),  # the run's own config.yaml
        (["--config", config, "--out-dir", str(tmp_path / "copy-b"), "--resume", str(tmp_path / "copy-b")],
         tmp_path / "copy-b"),
    ]:  # fmt: skip
        capsys.readouterr()
        assert main(["train", *argv]) == 0
        err = capsys.readouterr().err
        note = f"note: {where} holds no finished checkpoint (its first save was interrupted): starting"
        assert f"{note} from step 0" in err
        assert "already holds a run" not in err
        assert _scratch(where) == [] and read_trainer_state(find_checkpoint(where))["step"] == 4
        assert [r["step"] for r in read_metrics(where / "metrics.jsonl") if r["kind"] == "train"] == [
            1,
            2,
            3,
            4,
        ]


def test_resume_of_another_directory_without_a_checkpoint_is_still_an_error(make_config, tmp_path, capsys):
    config = _config_file(make_config, tmp_path)
    (tmp_path / "elsewhere").mkdir()
    assert main(["train", "--config", config, "--resume", str(tmp_path / "elsewhere")]) == 1
    assert "no checkpoint with trainer_state.pt at" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_checkpoints_without_latest_are_not_restarted_over(make_config, tmp_path, capsys):
    config = _config_file(make_config, tmp_path, "keep_every=2")
    assert main(["train", "--config", config]) == 0
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "latest")  # step-0000002 and step-0000004 remain
    assert main(["train", "--config", config, "--resume"]) == 1
    assert "holds checkpoints but no checkpoints/latest; pass --resume with one of" in capsys.readouterr().err
    assert (tmp_path / "run" / "checkpoints" / "step-0000004").is_dir()
