"""Training checkpoints: a BD3-LM-format model directory plus the trainer's state, written atomically.

Layout of ``<out_dir>/checkpoints/<name>/`` (name = "latest" or "step-0001000"):
- config.json + model.safetensors: ``dind.models.save_pretrained`` of the EMA weights (what
  BD3-LM releases), so ``dind.load`` loads it like a hub checkpoint;
- trainer_state.pt: raw weights, optimizer, LR scheduler, EMA, step, RNG states, data position
  (``dind.training.state``);
- train_config.yaml: the TrainConfig that produced it;
- checksums.sha256: the SHA-256 of the weights and of trainer_state.pt, checked when they are read.
A checkpoint is built in a temporary directory and renamed into place; the previous one with the
same name is moved aside first and removed after, so an interruption leaves a complete checkpoint
(either the old one, or ``<name>.old`` which ``find_checkpoint`` also accepts). A full disk stops
the save with one line naming the step and the checkpoint that is still intact (``DiskFullError``).
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from dind.errors import DiskFullError, UserError
from dind.outputs import checksum_problem, record_checksums

TRAINER_STATE = "trainer_state.pt"
TRAIN_CONFIG = "train_config.yaml"
LATEST = "latest"


def checkpoint_root(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / "checkpoints"


def periodic_name(step: int) -> str:
    return f"step-{step:07d}"


@contextmanager
def atomic_directory(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a path that does not exist yet (inside a temporary directory next to ``final``);
    whatever is written there replaces ``final`` when the block exits without an error."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    staged = scratch / final.name
    try:
        yield staged
        if not staged.is_dir():
            raise RuntimeError(f"nothing was written to the staged checkpoint directory {staged}")
        old = final.with_name(final.name + ".old")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        staged.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` or an error it was raised from is ENOSPC (torch.save reports it as a
    RuntimeError raised while handling the OSError; safetensors names it in its message)."""
    for _ in range(8):
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
        if error is None:
            return False
    return False


@contextmanager
def disk_full_named(step: object, target: Path, intact: str) -> Iterator[None]:
    """A full disk inside the block becomes a DiskFullError: saving ``step`` to ``target``, ``intact``."""
    try:
        yield
    except Exception as error:
        if not is_disk_full(error):
            raise
        raise DiskFullError(
            f"no space left on device while saving step {step} to {target} (its partial copy was "
            f"removed); {intact}: free some space, then continue with --resume"
        ) from error


def write_checkpoint(
    directory: str | os.PathLike[str],
    *,
    export_model: torch.nn.Module,
    trainer_state: dict[str, Any],
    config_yaml: str | None,
    periodic: str | os.PathLike[str] | None = None,
    intact_step: int | None = None,
) -> Path:
    """Write ``export_model`` (already holding the weights to publish: the EMA) in BD3-LM format
    with the trainer state next to it, atomically; ``config_yaml`` (None: a run built from objects,
    no config to record) goes to train_config.yaml; ``periodic``: also copy it there (kept).
    ``intact_step``: the step ``directory`` holds now (None: none of this run), which a full disk's
    ``DiskFullError`` names as still intact."""
    from dind.models.checkpoint import save_pretrained  # here: reading checkpoints needs no models

    directory, step = Path(directory), trainer_state.get("step")
    held = "no checkpoint of this run is complete yet"
    if intact_step is not None:
        held = f"the last intact checkpoint is {directory}, step {intact_step}"
    with disk_full_named(step, directory, held), atomic_directory(directory) as staged:
        save_pretrained(export_model, staged)
        staged.mkdir(parents=True, exist_ok=True)
        with open(staged / TRAINER_STATE, "wb") as handle:  # a file object: ENOSPC stays an OSError
            torch.save(trainer_state, handle)
        record_checksums(staged, [TRAINER_STATE])  # beside the weights' own entries
        if config_yaml is not None:
            (staged / TRAIN_CONFIG).write_text(config_yaml)
    if periodic is not None:
        held = f"the last intact checkpoint is {directory}, step {step}"
        with disk_full_named(step, Path(periodic), held), atomic_directory(periodic) as staged:
            shutil.copytree(directory, staged)
    return directory


def find_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint directory from a checkpoint path, or from a run's out_dir (its latest)."""
    path = Path(path)
    for candidate in (path, checkpoint_root(path) / LATEST):
        if (candidate / TRAINER_STATE).is_file():
            return candidate
        old = candidate.with_name(candidate.name + ".old")
        if (old / TRAINER_STATE).is_file():  # interrupted between the two renames
            return old
    raise FileNotFoundError(
        f"no checkpoint with {TRAINER_STATE} at {path} or {checkpoint_root(path) / LATEST}"
    )


def read_trainer_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer state of a checkpoint, after checking its SHA-256 where checksums.sha256 has one."""
    problem = checksum_problem(directory, [TRAINER_STATE])
    if problem is not None:
        raise UserError(problem)
    path = Path(directory) / TRAINER_STATE
    try:  # weights_only: tensors and plain containers only, never arbitrary objects
        with warnings.catch_warnings():  # torch warns about a foreign pickle's protocol: the error says it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        first = " ".join(str(error).split())[:150]
        raise UserError(
            f"{path} is not a dind training state (truncated, or another program's file; dind loads "
            f"tensors only and never unpickles objects): {type(error).__name__}: {first}"
        ) from None
    if not isinstance(state, dict) or "step" not in state:
        raise UserError(
            f"{path} is not a dind training state (got a {type(state).__name__} without a 'step' entry)"
        )
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
