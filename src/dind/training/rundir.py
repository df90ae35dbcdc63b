"""A run's output directory: one run at a time, never silently reused, tidy after a kill.

- ``check_out_dir``: an out_dir that already holds a run needs ``--resume`` (of that run) or
  ``--overwrite``;
- ``RunLock``: an exclusive ``fcntl.flock`` on ``<out_dir>/.lock`` (released by the kernel when the
  process dies, so a killed run never leaves a stale lock);
- ``tidy``: removes the scratch directories a killed checkpoint save leaves, and drops metrics
  records past the step a resumed run continues from (each step is then logged once);
- ``restartable``: a resumed run whose every save was killed (none finished) starts again from
  step 0, replacing what it wrote, instead of being refused as "already holds a run".
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dind.errors import OutputExistsError, RunLockedError
from dind.locks import LockHeld, flock_exclusive
from dind.training.checkpointing import TRAINER_STATE

LOCK = ".lock"
RUN_CONFIG = "config.yaml"  # the run's TrainConfig, written when it opens (before any save)
# what a run writes (tensorboard, wandb: the loggers' directories); --overwrite removes them all
RUN_FILES = (RUN_CONFIG, "metrics.jsonl", "checkpoints", "tensorboard", "wandb")


def holds_run(out_dir: str | os.PathLike[str]) -> bool:
    return any((Path(out_dir) / name).exists() for name in RUN_FILES)


def run_dir_of(checkpoint: str | os.PathLike[str]) -> Path | None:
    """The out_dir a checkpoint directory belongs to (``<out_dir>/checkpoints/<name>``), else None."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None


def nothing_saved(out_dir: str | os.PathLike[str]) -> bool:
    """Whether no checkpoint in ``out_dir`` is complete: none was saved, or every save was killed
    (``checkpoints/.<name>.tmp-*`` scratch is not a checkpoint)."""
    root = Path(out_dir) / "checkpoints"
    return not root.is_dir() or not any((entry / TRAINER_STATE).is_file() for entry in root.iterdir())


def restartable(path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> bool:
    """Whether resuming ``path`` means starting ``out_dir``'s run again from step 0: it is that
    run directory and none of its saves finished (e.g. killed during the first one)."""
    return Path(path).resolve() == Path(out_dir).resolve() and nothing_saved(out_dir)


def check_out_dir(
    out_dir: str | os.PathLike[str],
    *,
    resume_from: str | os.PathLike[str] | None,
    overwrite: bool,
    restarting: bool = False,
) -> None:
    """Raise OutputExistsError unless writing to ``out_dir`` destroys nothing unasked;
    ``restarting``: a resume was asked for and nothing was saved (``restartable``)."""
    if overwrite or not holds_run(out_dir) or (restarting and nothing_saved(out_dir)):
        return
    if resume_from is None and restarting:
        raise OutputExistsError(
            f"out_dir {out_dir} holds checkpoints but no checkpoints/latest; pass --resume with one of "
            "its checkpoint directories, --overwrite to replace the run, or choose another out_dir"
        )
    if resume_from is None:
        raise OutputExistsError(
            f"out_dir {out_dir} already holds a run; pass --resume to continue it, --overwrite to "
            "replace it, or choose another out_dir"
        )
    if run_dir_of(resume_from) != Path(out_dir).resolve():
        raise OutputExistsError(
            f"out_dir {out_dir} already holds a run other than the resumed checkpoint {resume_from}; "
            "pass --overwrite to replace it or choose another out_dir"
        )


def clear_run(out_dir: str | os.PathLike[str]) -> None:
    """Remove what an earlier run wrote (``--overwrite``)."""
    for name in RUN_FILES:
        path = Path(out_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def remove_scratch(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove ``checkpoints/.<name>.tmp-*`` left by a save that was killed; returns what went."""
    root = Path(out_dir) / "checkpoints"
    removed = sorted(root.glob(".*.tmp-*")) if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def truncate_metrics(path: str | os.PathLike[str], step: int) -> None:
    """Keep only the records of steps <= ``step`` (and drop a torn last line)."""
    from dind.outputs import atomic_write_text

    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


class RunLock:
    """``with RunLock(out_dir):`` holds the run directory; a second holder gets RunLockedError."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.path = Path(out_dir) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = flock_exclusive(self.path)
        except LockHeld as held:
            holder = held.holder or "another process"
            raise RunLockedError(
                f"out_dir {self.path.parent} is in use by another training run ({holder}); "
                "wait for it to finish or choose another out_dir"
            ) from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextmanager
def opened_run(
    out_dir: str | os.PathLike[str],
    metrics_path: str | os.PathLike[str],
    *,
    resumed_from: str | os.PathLike[str] | None,
    overwrite: bool,
    step: int,
    config_yaml: str | None,
    restarting: bool = False,
) -> Iterator[None]:
    """Hold ``out_dir`` for a run: lock it, refuse to destroy another run, tidy what a killed run
    left (``restarting``: all it wrote, since none of its saves finished), record ``config_yaml``
    (if any) as config.yaml."""
    out_dir = Path(out_dir)
    with RunLock(out_dir):
        check_out_dir(out_dir, resume_from=resumed_from, overwrite=overwrite, restarting=restarting)
        if resumed_from is None and (overwrite or restarting):
            clear_run(out_dir)
        remove_scratch(out_dir)
        if resumed_from is not None:
            truncate_metrics(metrics_path, step)
        if config_yaml is not None:
            (out_dir / RUN_CONFIG).write_text(config_yaml)
        yield
