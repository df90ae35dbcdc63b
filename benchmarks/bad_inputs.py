"""Run every bad input and fault in benchmarks/bad_inputs/ and tabulate what the user sees.

    python benchmarks/bad_inputs.py            # writes benchmarks/results/bad-inputs.md

A case passes when it ends in one clear message: a CLI call that exits non-zero with stderr free of
a Python traceback, or a library call that raises an exception whose message is one readable
sentence. Exit 0 means the input is now accepted (the table says so).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def cli(argv: list[str]) -> int:
    """The ``dind`` command in-process; returns its exit status (SystemExit included)."""
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def run_case(action) -> tuple[str, str]:
    """(outcome, message) for one case."""
    err, out = io.StringIO(), io.StringIO()
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
    ):
        try:
            status = action(Path(tmp))
        except Exception as error:  # library-level cases: the exception is the message
            return "raises", f"{type(error).__name__}: {error}"
    text = err.getvalue().strip()
    if "Traceback (most recent call last)" in text:
        return "TRACEBACK", text.splitlines()[-1]
    if isinstance(status, int) and status != 0:
        return f"exit {status}", text.splitlines()[-1] if text else "(no message)"
    return "ok", (text.splitlines()[-1] if text else "accepted")


def main() -> int:
    import bad_inputs

    rows, bad = [], 0
    started = time.perf_counter()
    for info in pkgutil.iter_modules(bad_inputs.__path__):
        module = importlib.import_module(f"bad_inputs.{info.name}")
        for label, action in module.CASES:
            outcome, message = run_case(action)
            bad += outcome == "TRACEBACK"
            rows.append((info.name, label, outcome, message.replace("|", "\\|").replace("\n", " ")[:300]))
    lines = [
        "# Bad inputs and faults: what the user sees",
        "",
        f"{len(rows)} cases, {bad} with a traceback; `python benchmarks/bad_inputs.py` "
        f"({time.perf_counter() - started:.0f} s).",
        "",
        "| area | input or fault | outcome | message |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {label} | {outcome} | {message} |" for a, label, outcome, message in rows),
    ]
    out = HERE / "results" / "bad-inputs.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"{len(rows)} cases, {bad} tracebacks -> {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
