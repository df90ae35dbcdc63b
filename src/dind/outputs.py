"""Output files: checked before any work starts, written atomically.

``check_output`` is called by every command before sampling, scoring or training begins, so a run
never computes for minutes and then fails (or silently overwrites earlier results) at the end.
``atomic_write`` writes to a temporary file next to the target and renames it onto the target only
when the write completed, so an interrupted run (Ctrl-C, an exception, a full disk) leaves either
the old file or no file, never a partial one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dind.errors import OutputExistsError, UserError

__all__ = ["check_output", "atomic_write", "atomic_write_bytes", "atomic_write_text"]


def check_output(path: str | os.PathLike[str], *, overwrite: bool, option: str = "--out") -> Path:
    """Check that ``path`` can be written as a file; create its parent directory; return it resolved.

    Raises ``OutputExistsError`` when ``path`` exists and ``overwrite`` is false, and ``UserError``
    when it is a directory, or its parent cannot be created or written (probed with a real file).
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise UserError(f"{option} must be a file path, but {target} is an existing directory")
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"{option} {target} already exists; pass --overwrite to replace it (or choose another path)"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise UserError(
            f"cannot create the directory of {option} {target}: {parent} is not a directory"
        ) from error
    except OSError as error:
        raise UserError(
            f"cannot create the directory of {option} {target}: {error.strerror or error}"
        ) from error
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as error:
        raise UserError(
            f"cannot write {option} {target}: directory {parent} is not writable ({error.strerror or error})"
        ) from error
    os.close(fd)
    os.unlink(probe)
    return target.resolve()


def _disk_full(error: OSError, target: Path) -> Exception:
    if error.errno == errno.ENOSPC:
        return UserError(f"disk full while writing {target}; free some space and run again")
    return error


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Yield a file open on a temporary file beside ``path``; on success it replaces ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and the exception
    re-raised; a full disk (ENOSPC) becomes a ``UserError`` naming ``path``.
    """
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_write mode must write a new file ('w', 'wb', ...) (got {mode!r})")
    target = Path(path)
    fd, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with open(scratch, mode.replace("x", "w"), **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(scratch, 0o666 & ~_UMASK)
        os.replace(scratch, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
        if isinstance(error, OSError):
            converted = _disk_full(error, target)
            if converted is not error:
                raise converted from error
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-global, so never toggle it mid-run
