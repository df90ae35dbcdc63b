"""dind.outputs: outputs are checked before work starts and written atomically."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.errors import OutputExistsError, RunLockedError, UserError
from dind.outputs import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_output,
    output_locks,
)


def _leftovers(directory: Path, name: str) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(f".{name}.")]


def test_check_output_creates_parent_and_returns_resolved(tmp_path):
    target = tmp_path / "a" / "b" / "out.jsonl"
    with output_locks():
        got = check_output(target, overwrite=False)
        assert _leftovers(target.parent, "out.jsonl") == [".out.jsonl.lock"]
    assert got == target.resolve()
    assert target.parent.is_dir() and not target.exists()
    assert _leftovers(target.parent, "out.jsonl") == []  # the probe file and the lock file are gone


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


HOLDER = textwrap.dedent(
    """
    import sys
    from dind.outputs import check_output
    check_output(sys.argv[1], overwrite=True)
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until told to go (or killed)
    """
)


def _holder(target: Path) -> subprocess.Popen:
    """Another process that has checked ``target`` (and so holds its lock) and is still writing."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_of_the_same_output_is_refused_until_the_first_ends(tmp_path):
    target = tmp_path / "out.jsonl"
    first = _holder(target)
    try:
        with pytest.raises(
            RunLockedError, match=r"--out .*out.jsonl is being written by another dind process \(pid \d+ on "
        ):
            check_output(target, overwrite=True)
        check_output(tmp_path / "other.jsonl", overwrite=True)  # other outputs are free
    finally:
        first.communicate("")  # the first writer finishes: its lock is released with the process
    with output_locks():
        assert check_output(target, overwrite=True) == target.resolve()


def test_a_killed_writer_leaves_a_lock_file_that_blocks_nothing(tmp_path):
    target = tmp_path / "out.jsonl"
    first = _holder(target)
    first.kill()  # SIGKILL: no clean-up runs
    first.wait()
    first.stdout.close()
    first.stdin.close()
    assert (tmp_path / ".out.jsonl.lock").exists()  # stale file, but no process holds its flock
    with output_locks():
        assert check_output(target, overwrite=False) == target.resolve()
    assert not (tmp_path / ".out.jsonl.lock").exists()


def test_one_process_may_check_its_own_output_twice(tmp_path):
    with output_locks():
        check_output(tmp_path / "out.jsonl", overwrite=False)
        check_output(tmp_path / "out.jsonl", overwrite=False)  # e.g. a library call inside a command


def test_dind_sample_refuses_an_out_that_another_process_is_writing(tmp_path):
    """A real ``dind sample`` process whose --out another process holds (checked, still writing)
    fails before sampling, in one line, and writes nothing."""
    out = tmp_path / "samples.jsonl"
    argv = [sys.executable, "-m", "dind", "sample", "--model", "micro", "--tokenizer", "bytes", "--plan", "4"]
    argv += ["--length", "8", "--device", "cpu", "--no-progress", "--out", str(out), "--overwrite"]
    first = _holder(out)  # holds the lock while the command starts, as a slower first run would
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
    finally:
        first.communicate("")
    assert result.returncode == 1
    assert "is being written by another dind process" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_output_locks_release_only_the_locks_taken_inside(tmp_path):
    with output_locks():
        check_output(tmp_path / "a.jsonl", overwrite=False)
        with output_locks():
            check_output(tmp_path / "b.jsonl", overwrite=False)
        assert not (tmp_path / ".b.jsonl.lock").exists()
        assert (tmp_path / ".a.jsonl.lock").exists()
    assert not (tmp_path / ".a.jsonl.lock").exists()


def test_a_sweep_into_a_directory_another_sweep_writes_is_refused(tmp_path):
    from dind.eval.sweep import SweepSettings, run_sweep

    first = _holder(tmp_path / "results.jsonl")  # another sweep appending to the same results
    settings = SweepSettings("m", "j", 4, 16, num_samples=1, seed=0, bos_id=None, tokenizer="bytes")
    try:
        with output_locks(), pytest.raises(RunLockedError, match="results.jsonl is being written by another"):
            run_sweep(None, None, None, [], settings, out_dir=tmp_path)
    finally:
        first.communicate("")
