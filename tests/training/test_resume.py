"""Exact resumption: N steps + checkpoint + resume + N steps == 2N steps, bitwise, on CPU."""

import pytest
import torch

from dind.training import build_trainer, find_checkpoint, read_trainer_state

OVERRIDES = (
    "steps=4",
    "variance.enabled=true",
    "variance.every=1",
    "variance.batches=1",
    "eval_every=2",
    "variance.widths=[0.5]",
    "variance.step=0.5",
    "objective.block_size_draw=sample",
)


def _final_state(path):
    return read_trainer_state(find_checkpoint(path))


def _assert_same(a, b):
    assert a["step"] == b["step"] and a["data"] == b["data"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][key], b["ema"]["shadow"][key]), key
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])


@pytest.mark.parametrize("stop", ["finished", "interrupted"])
def test_resume_continues_exactly(make_config, tmp_path, monkeypatch, stop):
    straight = build_trainer(make_config(*OVERRIDES, f"out_dir={tmp_path / 'straight'}"))
    straight.fit()

    if stop == "finished":
        build_trainer(make_config(*OVERRIDES, "steps=2", f"out_dir={tmp_path / 'split'}")).fit()
    else:
        first = build_trainer(make_config(*OVERRIDES, f"out_dir={tmp_path / 'split'}"))
        original = first.train_step
        monkeypatch.setattr(first, "train_step", lambda: original() if first.step < 2 else _interrupt())
        with pytest.raises(KeyboardInterrupt):
            first.fit()
    assert _final_state(tmp_path / "split")["step"] == 2

    resumed = build_trainer(make_config(*OVERRIDES, f"out_dir={tmp_path / 'split'}"))
    assert resumed.resume(str(tmp_path / "split")) == 2
    resumed.fit()
    _assert_same(_final_state(tmp_path / "straight"), _final_state(tmp_path / "split"))


def _interrupt():
    raise KeyboardInterrupt


def test_resume_refuses_another_world_size(make_config, tmp_path):
    trainer = build_trainer(make_config("steps=1", "eval_every=null"))
    trainer.fit()
    state = read_trainer_state(find_checkpoint(tmp_path / "run"))
    state["world_size"] = 2
    with pytest.raises(ValueError, match="same world size"):
        trainer.load_state_dict(state)


@pytest.mark.parametrize("implementation", ["auto", "for_loop"])
def test_resume_is_exact_with_each_optimizer_implementation(make_config, tmp_path, implementation):
    """The default (auto: fused AdamW on CPU and CUDA) and the per-parameter loop both resume bit for
    bit; the checkpoint records the implementation, so a run resumed under another setting keeps
    the one it started with."""
    options = ("steps=4", "eval_every=null", f"optim.implementation={implementation}")
    straight = build_trainer(make_config(*options, f"out_dir={tmp_path / 'straight'}"))
    assert straight.optimizer.param_groups[0]["fused"] is (implementation == "auto" or None)
    straight.fit()
    build_trainer(make_config(*options, "steps=2", f"out_dir={tmp_path / 'split'}")).fit()
    other = "for_loop" if implementation == "auto" else "auto"
    resumed = build_trainer(
        make_config(
            "steps=4", "eval_every=null", f"optim.implementation={other}", f"out_dir={tmp_path / 'split'}"
        )
    )
    resumed.resume(str(tmp_path / "split"))
    assert resumed.optimizer.param_groups[0]["fused"] == straight.optimizer.param_groups[0]["fused"]
    resumed.fit()
    _assert_same(_final_state(tmp_path / "straight"), _final_state(tmp_path / "split"))
