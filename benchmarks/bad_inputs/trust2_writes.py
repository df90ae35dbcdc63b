"""Faults while outputs are written (issue 19 items 1, 5, 6): two processes writing one output at
once, a lock file left by a killed writer, a full disk during a checkpoint save, a kill during the
very first checkpoint save followed by ``--resume``.

Each case is (label, action(tmp)); a CLI case returns the exit status, a library case raises.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

HOLDER = textwrap.dedent(
    """
    import sys
    from dind.outputs import check_output
    check_output(sys.argv[1], overwrite=True)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def while_another_writes(target: Path, action, *, killed: bool = False) -> int:
    """``action()`` while another process has checked ``target`` and is still writing it (or, when
    ``killed``, after that process was killed with SIGKILL, leaving its lock file behind)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        if holder.stdout.readline().strip() != "locked":
            raise RuntimeError("the other writer did not start")
        if killed:
            holder.kill()
            holder.wait()
        return action()
    finally:
        holder.kill()
        holder.communicate()


def sample_to(out: Path, *extra: str) -> int:
    argv = ["sample", "--model", "micro", "--tokenizer", "bytes", "--plan", "4", "--length", "8"]
    return cli([*argv, "--out", str(out), "--device", "cpu", "--no-progress", *extra])


def eval_to(tmp: Path) -> int:
    from bad_inputs.eval import eval_, tokens_file

    samples = tokens_file(tmp, [72, 105, 33, 10])
    out = tmp / "report.json"
    return while_another_writes(out, lambda: eval_(tmp, samples, "--out", str(out), "--overwrite"))


def reproduce_to(tmp: Path) -> int:
    from bad_inputs.eval import reproduce

    return while_another_writes(tmp / "r" / "results.csv", lambda: reproduce(tmp, "--overwrite"))


def train_disk_full(fail_at: int):
    """``dind train`` whose ``fail_at``-th torch.save of a checkpoint finds the disk full."""

    def action(tmp: Path) -> int:
        import torch

        from bad_inputs.training import _base

        real, calls = torch.save, []

        def save(*args, **kwargs):
            calls.append(1)
            if len(calls) == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)

        with mock.patch.object(torch, "save", save):
            return cli(["train", *_base(tmp), "steps=2", "save_every=1"])

    return action


KILLED_IN_FIRST_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import dind.models.checkpoint
    from dind.cli import main

    def killed(model, directory, **options):  # SIGKILL half-way through the first save's weights
        directory.mkdir(parents=True)
        (directory / "model.safetensors").write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)

    dind.models.checkpoint.save_pretrained = killed
    sys.exit(main(sys.argv[1:]))
    """
)


def resume_after_kill_in_first_save(*resume: str):
    def action(tmp: Path) -> int:
        from bad_inputs.training import _base

        argv = ["train", *_base(tmp)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_IN_FIRST_SAVE, *argv], env=env, capture_output=True
        )
        if killed.returncode != -9 or not list((tmp / "run" / "checkpoints").glob(".latest.tmp-*")):
            raise RuntimeError(f"the first run was not killed during its save (status {killed.returncode})")
        if resume == ("RUN",):
            return cli(["train", "--resume", str(tmp / "run")])
        return cli([*argv, *resume])

    return action


CASES = [
    (
        "sample --out X while another dind process writes X",
        lambda tmp: while_another_writes(tmp / "s.jsonl", lambda: sample_to(tmp / "s.jsonl", "--overwrite")),
    ),
    ("eval --out X while another dind process writes X", eval_to),
    ("reproduce --out DIR while another dind process writes DIR", reproduce_to),
    (
        "sample --out X after a writer of X was killed (its lock file left)",
        lambda tmp: while_another_writes(tmp / "s.jsonl", lambda: sample_to(tmp / "s.jsonl"), killed=True),
    ),
    ("train: disk full (ENOSPC) while saving step 2", train_disk_full(2)),
    ("train: disk full (ENOSPC) during the first save", train_disk_full(1)),
    ("train --resume RUN after a kill during the first save", resume_after_kill_in_first_save("RUN")),
    (
        "train --config --resume after a kill during the first save",
        resume_after_kill_in_first_save("--resume"),
    ),
    ("train --config (no --resume) after a kill during the first save", resume_after_kill_in_first_save()),
]


if __name__ == "__main__":  # python benchmarks/bad_inputs/trust2_writes.py: this module's table only
    import importlib.util

    runner_path = Path(__file__).resolve().parents[1] / "bad_inputs.py"  # the package shadows the runner
    spec = importlib.util.spec_from_file_location("bad_inputs_runner", runner_path)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for label, action in CASES:
        print(label, "|", *runner.run_case(action))
