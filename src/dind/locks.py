"""Exclusive locks held by a ``dind`` process: on the outputs it writes and on run directories.

``hold_output_lock`` (what ``dind.outputs.check_output`` calls) takes an exclusive ``fcntl.flock`` on
``.<name>.lock`` beside an output and holds it until ``output_locks()`` ends (the ``dind`` command's
whole run) or the process exits, so two commands writing the same output at once cannot both
succeed: the second stops before any work. ``flock_exclusive`` is the primitive it shares with the
training run-directory lock (``dind.training.rundir.RunLock``). The kernel drops a lock when its
process dies, so a lock file a killed run leaves blocks nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from dind.errors import RunLockedError, UserError

_LOCKS: dict[Path, int] = {}  # output -> the open lock file this process holds


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def lock_output(path: str | os.PathLike[str], *, option: str = "--out") -> None:
    """Hold ``path``'s output lock (as ``check_output`` does) for an output that is resumed or
    appended to rather than replaced (a sweep's ``results.jsonl``); ``RunLockedError`` when another
    process holds it."""
    target = Path(path).expanduser()
    hold_output_lock(target.parent.resolve() / target.name, option)


class LockHeld(Exception):
    """Another process holds the lock; ``holder``: what it wrote in the lock file."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def flock_exclusive(path: Path, *, flags: int = 0) -> int:
    """Open ``path`` (created if missing; ``flags`` are added to the open's) and take an exclusive,
    non-blocking ``flock`` on it; on success write this process's pid and host in it and return the
    open descriptor (the lock lasts until it is closed or the process dies). ``LockHeld`` when
    another process holds it; ``OSError`` when the file cannot be opened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip()
        os.close(fd)
        raise LockHeld(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}"[:200].encode())
    return fd


def hold_output_lock(target: Path, option: str) -> None:
    """Hold an exclusive flock on ``target``'s lock file (already held by this process: nothing to do)."""
    if target in _LOCKS:
        return
    path = _lock_path(target)
    for _ in range(10):  # the file may be unlinked by its holder between our open and our flock
        try:
            fd = flock_exclusive(path, flags=os.O_NOFOLLOW)
        except LockHeld as held:
            holder = held.holder or "pid unknown"
            raise RunLockedError(
                f"{option} {target} is being written by another dind process ({holder}; "
                f"lock {path.name}); wait for it to finish or choose another path"
            ) from None
        except OSError as error:
            raise UserError(
                f"cannot create the lock file {path} of {option} {target}: {error.strerror}"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            _LOCKS[target] = fd
            return
        os.close(fd)  # we locked a file its holder had just removed: take the new one
    raise RunLockedError(f"{option} {target}: could not take its lock {path} (it keeps being replaced)")


def release_output_locks(keep: frozenset[Path] = frozenset()) -> None:
    """Release the output locks this process holds (except ``keep``) and remove their lock files."""
    for target in [target for target in _LOCKS if target not in keep]:
        fd = _LOCKS.pop(target)
        with contextlib.suppress(OSError):  # unlinked while still locked: a waiter re-checks the inode
            os.unlink(_lock_path(target))
        os.close(fd)


@contextlib.contextmanager
def output_locks() -> Iterator[None]:
    """Output locks that ``check_output`` takes inside the block are released when it exits."""
    held = frozenset(_LOCKS)
    try:
        yield
    finally:
        release_output_locks(keep=held)
