"""Data parallelism: 2 CPU processes (gloo, launched by torchrun) see the same loss and gradients as
one process on the same global batch. Fast: micro model, length 32, one step."""

import os
import subprocess
import sys

import attrs
import pytest
import torch

from dind import models
from dind.training import build_trainer, find_checkpoint

WORKER = r"""
import os
import sys
import torch
import torch.distributed as dist
from dind.training import TrainConfig, build_trainer

config = TrainConfig.from_file(sys.argv[1], [f"distributed={sys.argv[2]}", "micro_batch_size=2"])
trainer = build_trainer(config)
captured = {}
step = trainer.optimizer.step

def capture(*args, **kwargs):
    for name, parameter in trainer.forward.named_parameters():
        grad = parameter.grad
        grad = grad.full_tensor() if hasattr(grad, "full_tensor") else grad  # collective under FSDP
        captured[name.replace("module.", "").removeprefix("model.")] = grad.detach().clone()
    return step(*args, **kwargs)

trainer.optimizer.step = capture
metrics = trainer.train_step()
trainer.save()  # collective export (FSDP gathers the shards)
resumed = build_trainer(config)
resumed.resume(config.out_dir)
same = all(torch.equal(a, b) for a, b in zip(resumed.state_dict()["model"].values(),
                                              trainer.state_dict()["model"].values()))
if dist.get_rank() == 0:
    result = {"metrics": metrics, "grads": captured, "resumed_step": resumed.step, "same": same}
    torch.save(result, sys.argv[3])
dist.destroy_process_group()
# torch 2.13 + gloo + FSDP2 sometimes aborts in C++ teardown at interpreter exit ("terminate called
# without an active exception") after all work is done; leave without the teardown
os._exit(0)
"""


def _single_process(config):
    trainer = build_trainer(attrs.evolve(config, out_dir=config.out_dir + "-single"))
    captured = {}
    step = trainer.optimizer.step

    def capture(*args, **kwargs):
        for name, parameter in trainer.forward.named_parameters():
            captured[name.removeprefix("model.")] = parameter.grad.detach().clone()
        return step(*args, **kwargs)

    trainer.optimizer.step = capture
    return trainer.train_step(), captured, trainer.model


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one(make_config, tmp_path, mode):
    config = make_config(
        "model.options={dropout: 0.0}",
        "ema_decay=null",
        "steps=1",
        "eval_every=null",
        "save_every=null",
        "objective.block_size_draw=sample",
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config.to_yaml())
    (tmp_path / "worker.py").write_text(WORKER)
    result_path = tmp_path / "rank0.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(tmp_path / "worker.py"),
        str(config_path),
        mode,
        str(result_path),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    distributed = torch.load(result_path, weights_only=True)

    metrics, grads, model = _single_process(config)
    assert distributed["metrics"]["nll"] == pytest.approx(metrics["nll"], rel=1e-5)
    assert distributed["metrics"]["grad_norm"] == pytest.approx(metrics["grad_norm"], rel=1e-4)
    assert distributed["grads"].keys() == grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(distributed["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert distributed["resumed_step"] == 1 and distributed["same"]
    published = models.from_pretrained(find_checkpoint(config.out_dir))  # no EMA here: the raw weights
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(
            dict(published.named_parameters())[name], parameter.detach(), rtol=1e-4, atol=1e-6, msg=name
        )


def test_a_checkpoint_of_another_shape_names_the_tensors_that_differ():
    from dind.errors import UserError
    from dind.training.distributed import DistributedContext, load_model_state

    small = models.build("micro", init="random", generator=torch.Generator().manual_seed(0))
    wide = models.build("micro", init="random", generator=torch.Generator().manual_seed(0), n_blocks=3)
    SINGLE = DistributedContext("none", 0, 1, torch.device("cpu"))  # noqa: N806
    with pytest.raises(
        UserError, match=r"missing from the checkpoint \(10\): backbone.blocks.2.*, \.\.\. \(resume"
    ):
        load_model_state(wide, small.state_dict(), SINGLE)
    other = models.build("micro", init="random", generator=torch.Generator().manual_seed(0), hidden_dim=32)
    with pytest.raises(
        UserError, match=r"shapes differ \(26\): backbone\..* checkpoint \(64, 64\) vs model \(32, 32\)"
    ):
        load_model_state(other, small.state_dict(), SINGLE)


FAILING_SAVE = r"""
import json
import os
import sys
import torch.distributed as dist
import dind.training.checkpointing as ckpt
from dind.errors import DiskFullError
from dind.training import TrainConfig, build_trainer

config = TrainConfig.from_file(sys.argv[1], ["distributed=ddp", "micro_batch_size=2"])
trainer = build_trainer(config)

def full(*args, **kwargs):
    raise DiskFullError("no space left on device (simulated)")

if dist.get_rank() == 0:
    ckpt.write_checkpoint = full
try:
    trainer.save()
    outcome = "saved"
except Exception as error:
    outcome = f"{type(error).__name__}: {error}"
with open(f"{sys.argv[2]}.{dist.get_rank()}", "w") as file:
    json.dump(outcome, file)
os._exit(0)
"""


def test_a_save_that_fails_on_the_main_process_stops_every_rank(make_config, tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(make_config("ema_decay=null", "steps=1", "eval_every=null").to_yaml())
    (tmp_path / "worker.py").write_text(FAILING_SAVE)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(tmp_path / "worker.py"), str(config_path), str(tmp_path / "outcome")]  # fmt: skip
    completed = subprocess.run(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    import json

    main, other = (json.loads((tmp_path / f"outcome.{rank}").read_text()) for rank in (0, 1))
    assert main == "DiskFullError: no space left on device (simulated)"
    assert other.startswith("SaveFailedError: the main process could not save step 0 to ")
