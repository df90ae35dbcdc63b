"""What a ``Trainer`` reads from and writes to its run directory, outside the training loop:

- ``opened``: what ``fit()`` opens on the main process before its first step and closes after its
  last: the run directory (locked, checked, tidied, its config recorded: ``rundir.opened_run``), the
  metric sinks of the configured loggers attached to the trainer's metrics log, and the warning when
  the learning rate never reaches its peak within the run's steps (other ranks open nothing);
- ``save``: ``checkpoints/latest`` (and ``checkpoints/step-N``), written atomically;
- ``resume``: the trainer's state from a checkpoint, or a fresh start when none of the run's saves
  finished (``missing_ok``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import dind.training.checkpointing as ckpt
import dind.training.rundir as rundir
import dind.training.state as checkpoint_state
from dind.errors import SaveFailedError
from dind.training.loggers import opened_sinks
from dind.training.metrics import announce
from dind.training.optim import peak_warning


@contextmanager
def opened(trainer: Any) -> Iterator[None]:
    """The run outputs of ``trainer`` (a ``Trainer``) for the duration of ``fit()``."""
    if not trainer.context.is_main:
        yield
        return
    config_yaml = None if trainer.config is None else trainer.config.to_yaml()
    with rundir.opened_run(
        trainer.out_dir,
        trainer.metrics.path,
        resumed_from=trainer.resumed_from,
        overwrite=trainer.overwrite,
        step=trainer.step,
        config_yaml=config_yaml,
        restarting=trainer.restarting,
    ):
        sinks = opened_sinks(trainer.loggers, trainer.out_dir, step=trainer.step, config_yaml=config_yaml)
        with trainer.metrics.attached(sinks):
            announce(peak_warning(trainer.scheduler, trainer.settings.steps))
            yield


def save(trainer: Any, *, periodic: bool) -> None:
    """``Trainer.save``: a collective under DDP/FSDP; the main process writes."""
    state = trainer.state_dict()
    root = ckpt.checkpoint_root(trainer.out_dir)
    parts = {
        "forward": trainer.forward,
        "model": trainer.model,
        "ema": trainer.ema,
        "context": trainer.context,
    }
    failure: Exception | None = None
    with checkpoint_state.exported_model(**parts, export_model=trainer.export_model) as export:
        if trainer.context.is_main:
            try:
                ckpt.write_checkpoint(
                    root / ckpt.LATEST,
                    export_model=export,
                    trainer_state=state,
                    config_yaml=None if trainer.config is None else trainer.config.to_yaml(),
                    periodic=root / ckpt.periodic_name(trainer.step) if periodic else None,
                    intact_step=trainer.saved_step,  # named if the disk fills up
                )
                trainer.saved_step = trainer.step
            except Exception as error:  # the other ranks must hear of it, not wait at a barrier
                failure = error
    # a barrier that also carries whether the main process failed (without a process group: 0/1 here)
    failed = trainer.context.all_reduce_sum(torch.tensor([0.0 if failure is None else 1.0]))
    if failure is not None:
        raise failure
    if failed.item() > 0:
        raise SaveFailedError(
            f"the main process could not save step {trainer.step} to {root / ckpt.LATEST} (its error "
            "names the cause); this process stops with it"
        )


def resume(trainer: Any, path: str | Path, *, missing_ok: bool) -> int:
    """``Trainer.resume``: load the checkpoint at ``path`` (or, ``missing_ok`` and ``path`` the
    trainer's own out_dir with no finished save, mark the run as starting again); the step reached."""
    if missing_ok and rundir.restartable(path, trainer.out_dir):
        trainer.restarting = True
        return trainer.step
    checkpoint = ckpt.find_checkpoint(path)
    trainer.load_state_dict(ckpt.read_trainer_state(checkpoint))
    trainer.resumed_from = checkpoint
    if rundir.run_dir_of(checkpoint) == trainer.out_dir.resolve():
        trainer.saved_step = trainer.step
    return trainer.step
