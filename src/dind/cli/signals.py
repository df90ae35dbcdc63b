"""SIGTERM handled like Ctrl-C while a ``dind`` command runs (training saves and stops, sampling
stops, scratch files are removed), with exit status 143."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: training saves and stops, sampling stops, scratch
    files are removed, exactly as for Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_like_ctrl_c() -> Iterator[None]:
    """While a command runs, SIGTERM raises ``Terminated`` (a KeyboardInterrupt); the previous handler
    is restored after. Only in the main thread (signal handlers can be set there only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
