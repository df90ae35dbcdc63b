"""Runs never destroy each other: existing runs, locks, scratch of killed saves, metrics on resume,
non-finite steps, the second Ctrl-C, schedule changes on resume."""

import argparse
import shutil

import pytest
import torch

from dind.cli import train as command
from dind.errors import NonFiniteError, OutputExistsError, RunLockedError
from dind.training import Trainer, build_trainer, find_checkpoint, read_trainer_state
from dind.training import checkpointing as ckpt
from dind.training.metrics import read_metrics
from dind.training.rundir import RunLock, truncate_metrics

FAST = ("eval_every=null", "save_every=1", "steps=2")


def _train(argv):
    parser = argparse.ArgumentParser(prog="dind train")
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def _nan_at(trainer, step, monkeypatch):
    """From optimizer step ``step`` on (1-based), the denoiser's logits are NaN (a forward hook)."""

    def poison(module, inputs, output):
        return output * float("nan") if trainer.step + 1 >= step else output

    trainer.forward.register_forward_hook(poison)


def test_non_finite_loss_stops_and_saves_nothing_of_that_step(make_config, tmp_path, monkeypatch):
    trainer = build_trainer(make_config(*FAST, "steps=4"))
    _nan_at(trainer, 3, monkeypatch)
    with pytest.raises(NonFiniteError, match=r"stopped at step 3: the loss is nan.*last save: step 2"):
        trainer.fit()
    state = read_trainer_state(find_checkpoint(tmp_path / "run"))
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["latest"]
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_existing_run_needs_resume_or_overwrite(make_config, tmp_path):
    build_trainer(make_config(*FAST)).fit()
    with pytest.raises(OutputExistsError, match="already holds a run; pass --resume"):
        build_trainer(make_config(*FAST)).fit()
    assert _train(["--config", _config_file(make_config, tmp_path), "--overwrite", "steps=1"]) == 0
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 1
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1]  # old run gone


def _config_file(make_config, tmp_path, *overrides):
    path = tmp_path / "config.yaml"
    path.write_text(make_config(*FAST, *overrides).to_yaml())
    return str(path)


def test_lock_refuses_a_second_run_and_is_released(make_config, tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=r"in use by another training run \(pid \d+ on "):
            build_trainer(make_config(*FAST)).fit()
    build_trainer(make_config(*FAST)).fit()  # released


def test_resuming_a_copy_writes_to_the_copy(make_config, tmp_path, capsys):
    build_trainer(make_config(*FAST)).fit()
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert _train(["--resume", str(tmp_path / "copy"), "steps=3"]) == 0
    assert read_trainer_state(find_checkpoint(tmp_path / "copy"))["step"] == 3
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 2
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before
    with pytest.raises(OutputExistsError, match="other than the resumed checkpoint"):
        trainer = build_trainer(make_config(*FAST))  # out_dir = run, checkpoint from the copy
        trainer.resume(str(tmp_path / "copy"))
        trainer.fit()


def test_kill_and_resume_logs_each_step_once_and_removes_scratch(make_config, tmp_path):
    build_trainer(make_config(*FAST, "steps=4", "keep_every=2")).fit()
    run = tmp_path / "run"
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"kind": "train", "st')  # killed mid-write
    scratch = run / "checkpoints" / ".latest.tmp-abc123" / "latest"  # as atomic_directory leaves it
    scratch.mkdir(parents=True)
    (scratch / "model.safetensors").write_bytes(b"partial")
    # resume from step 2 (a kept copy): steps 3 and 4 are redone
    trainer = build_trainer(make_config(*FAST, "steps=4"))
    trainer.resume(str(run / "checkpoints" / "step-0000002"))
    trainer.fit()
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    assert not scratch.parent.exists()


def test_truncate_metrics_keeps_steps_up_to_the_resumed_one(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2}\n{"ste')
    truncate_metrics(path, 1)
    assert read_metrics(path) == [{"step": 0}, {"step": 1}]


def test_second_interrupt_during_the_save_reports_no_unsaved_step(make_config, tmp_path, monkeypatch, capsys):
    config_path = _config_file(make_config, tmp_path, "steps=4", "save_every=2")
    original_write, original_step = ckpt.write_checkpoint, Trainer.train_step
    calls = []

    def write(*args, **kwargs):  # the first save (step 2) works; the save on interrupt is interrupted
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original_write(*args, **kwargs)

    def step(self):
        if self.step == 3:
            raise KeyboardInterrupt  # first Ctrl-C, after step 3
        return original_step(self)

    monkeypatch.setattr(ckpt, "write_checkpoint", write)
    monkeypatch.setattr(Trainer, "train_step", step)
    assert _train(["--config", config_path]) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 3 before its save finished" in err and "holds step 2" in err
    assert "saved" not in err
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 2
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["latest"]


@pytest.mark.parametrize(
    "first, second, expected",
    [
        (("steps=2",), ("steps=3",), "equals one trained with the new config"),
        (
            ("steps=2", "optim.lr_schedule=cosine", "optim.warmup_steps=0"),
            ("steps=3",),
            "steps 1..1 already ran at other rates",
        ),
        (("steps=2",), ("steps=2", "optim.lr=2e-3"), "optim.lr: 0.001 -> 0.002"),
    ],
)
def test_schedule_changes_on_resume_are_stated(make_config, tmp_path, capsys, first, second, expected):
    assert _train(["--config", _config_file(make_config, tmp_path, *first)]) == 0
    capsys.readouterr()
    assert _train(["--config", _config_file(make_config, tmp_path, *first, *second), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "learning-rate schedule keys changed on resume" in err and expected in err
