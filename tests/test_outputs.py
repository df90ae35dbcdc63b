"""dind.outputs: outputs are checked before work starts and written atomically."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.errors import OutputExistsError, UserError
from dind.outputs import atomic_write, atomic_write_bytes, atomic_write_text, check_output


def _leftovers(directory: Path, name: str) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(f".{name}.")]


def test_check_output_creates_parent_and_returns_resolved(tmp_path):
    target = tmp_path / "a" / "b" / "out.jsonl"
    got = check_output(target, overwrite=False)
    assert got == target.resolve()
    assert target.parent.is_dir() and not target.exists()
    assert _leftovers(target.parent, "out.jsonl") == []  # the probe file is gone


def test_check_output_refuses_existing_file_without_overwrite(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    with pytest.raises(OutputExistsError, match=r"--trace .*out.jsonl.*pass --overwrite"):
        check_output(target, overwrite=False, option="--trace")
    assert check_output(target, overwrite=True) == target.resolve()
    assert target.read_text() == "old"  # checking never touches the file


def test_check_output_refuses_directory(tmp_path):
    with pytest.raises(UserError, match="is an existing directory"):
        check_output(tmp_path, overwrite=True)


def test_check_output_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        check_output(tmp_path / "file" / "out.jsonl", overwrite=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="not writable"):
            check_output(locked / "out.jsonl", overwrite=False)
        with pytest.raises(UserError, match="cannot create"):
            check_output(locked / "sub" / "out.jsonl", overwrite=False)
    finally:
        locked.chmod(0o700)


@settings(max_examples=25, deadline=None)
@given(old=st.binary(max_size=64), new=st.binary(max_size=64), fail=st.booleans())
def test_atomic_write_all_or_nothing(tmp_path_factory, old, new, fail):
    directory = tmp_path_factory.mktemp("atomic")
    target = directory / "f.bin"
    target.write_bytes(old)
    if fail:
        with pytest.raises(RuntimeError):
            with atomic_write(target, "wb") as handle:
                handle.write(new)
                raise RuntimeError("boom")
        assert target.read_bytes() == old
    else:
        atomic_write_bytes(target, new)
        assert target.read_bytes() == new
    assert _leftovers(directory, "f.bin") == []


def test_keyboard_interrupt_leaves_no_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            handle.write("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_disk_full_becomes_user_error(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=r"disk full while writing .*out.txt") as info:
        atomic_write_text(target, "hello")
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / "x.txt", "hello")
    assert not isinstance(info.value, UserError) and info.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []


def test_permissions_follow_umask(tmp_path):
    target = tmp_path / "perm.txt"
    atomic_write_text(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_text_encoding(tmp_path):
    target = tmp_path / "t.txt"
    atomic_write_text(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(target, "r"):
            pass


def test_check_output_probe_failure_is_user_error(tmp_path, monkeypatch):
    """The writability probe really writes: a refused write (read-only mount, ACL) is reported."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match=r"cannot write --out .*not writable \(Permission denied\)"):
        check_output(tmp_path / "out.jsonl", overwrite=False)


def test_a_symlink_output_replaces_the_link_never_its_target(tmp_path):
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("another run's data")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    with pytest.raises(
        OutputExistsError, match="is a symbolic link; pass --overwrite to replace the link itself"
    ):
        check_output(link, overwrite=False)
    target = check_output(link, overwrite=True)
    atomic_write_text(target, "new samples")
    assert victim.read_text() == "another run's data"
    assert not link.is_symlink() and link.read_text() == "new samples"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory link"])
def test_special_files_are_refused_even_with_overwrite(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
        expected = "is a FIFO"
    elif kind == "device":
        path = Path("/dev/null")
        expected = "is a character device"
    else:
        path = tmp_path / "dir"
        path.mkdir()
        expected = "is an existing directory"
    with pytest.raises(UserError, match=f"must be a regular file path, but .* {expected}"):
        check_output(path, overwrite=True)
