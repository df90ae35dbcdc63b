"""Output files: checked before any work starts, written atomically.

``check_output`` is called by every command before sampling, scoring or training begins, so a run
never computes for minutes and then fails (or silently overwrites earlier results) at the end.
``atomic_write`` writes to a temporary file next to the target and renames it onto the target only
when the write completed, so an interrupted run (Ctrl-C, an exception, a full disk) leaves either
the old file or no file, never a partial one.
``check_output`` also takes the output's lock (``dind.locks``), so two commands writing the same
output at once cannot both succeed: the second stops before any work.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dind.errors import DiskFullError, OutputExistsError, UserError
from dind.locks import hold_output_lock, output_locks  # noqa: F401  (output_locks: re-exported)

__all__ = [
    "CHECKSUMS_NAME",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "checksum_problem",
    "output_locks",
    "record_checksums",
]

CHECKSUMS_NAME = "checksums.sha256"  # `sha256sum -c checksums.sha256` checks it too


def check_output(path: str | os.PathLike[str], *, overwrite: bool, option: str = "--out") -> Path:
    """Check that ``path`` can be written as a file; create its parent directory; return it resolved.

    Raises ``OutputExistsError`` when ``path`` exists and ``overwrite`` is false, ``UserError``
    when it is a directory, or its parent cannot be created or written (probed with a real file),
    and ``RunLockedError`` when another process is writing it (holds its lock, see ``output_locks``).
    """
    target = Path(path).expanduser()
    kind = _special_kind(target)
    if kind is not None:
        raise UserError(f"{option} must be a regular file path, but {target} is {kind}")
    if target.is_symlink() and not overwrite:
        raise OutputExistsError(
            f"{option} {target} is a symbolic link; pass --overwrite to replace the link itself (its target "
            f"{os.readlink(target)} is never written), or choose another path"
        )
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
    resolved = parent.resolve() / target.name  # not target.resolve(): a symlink is replaced, never followed
    hold_output_lock(resolved, option)
    return resolved


def _special_kind(target: Path) -> str | None:
    """What ``target`` is when it exists and is neither a regular file nor a symlink (which an atomic
    rename replaces): an existing directory, a FIFO, a device, a socket; else None."""
    try:
        mode = target.lstat().st_mode
    except OSError:
        return None
    for test, kind in (
        (stat.S_ISDIR, "an existing directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return None


def _disk_full(error: OSError, target: Path) -> Exception:
    if error.errno == errno.ENOSPC:
        return DiskFullError(f"disk full while writing {target}; free some space and run again")
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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, in hex (read in 1 MiB pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def _read_checksums(directory: Path) -> dict[str, str]:
    manifest = directory / CHECKSUMS_NAME
    entries: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or Path(name).name != name:
            raise ValueError(f"{manifest} line {number} is not '<sha256>  <file name>' (got {line[:100]!r})")
        entries[name] = digest.lower()
    return entries


def record_checksums(directory: str | os.PathLike[str], names: list[str] | set[str]) -> None:
    """Record the SHA-256 of the files ``names`` of ``directory`` in its checksums.sha256 (atomically),
    keeping the entries of other files that still exist there."""
    directory = Path(directory)
    entries = _read_checksums(directory) if (directory / CHECKSUMS_NAME).is_file() else {}
    entries = {name: digest for name, digest in entries.items() if (directory / name).is_file()}
    entries.update({name: file_sha256(directory / name) for name in names})
    atomic_write_text(
        directory / CHECKSUMS_NAME, "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items()))
    )


def checksum_problem(directory: str | os.PathLike[str], names: list[str] | set[str]) -> str | None:
    """None when every file of ``names`` that ``directory``'s checksums.sha256 lists has the recorded
    SHA-256 (or there is no such file: checkpoints from elsewhere have none); else one line naming
    the file whose bytes changed."""
    directory = Path(directory)
    if not (directory / CHECKSUMS_NAME).is_file():
        return None
    try:
        entries = _read_checksums(directory)
    except ValueError as error:
        return str(error)
    for name in sorted(names):
        if name in entries and (directory / name).is_file():
            actual = file_sha256(directory / name)
            if actual != entries[name]:
                return (
                    f"{directory / name} is corrupted: its SHA-256 is {actual[:16]}... but "
                    f"{CHECKSUMS_NAME} recorded {entries[name][:16]}... when it was saved (the file's bytes "
                    "changed: copy it again from its source)"
                )
    return None


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-global, so never toggle it mid-run
