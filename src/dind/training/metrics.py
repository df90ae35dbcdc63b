"""Training metrics: one JSON object per line (JSONL) and a tqdm progress bar, main rank only."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends records to ``path`` (JSONL); ``enabled=False`` (non-main ranks) makes it a no-op.
    Each record is flushed at once, so an interrupted run keeps every line written. ``sinks``:
    open loggers (``dind.training.loggers``) that receive every record too."""

    def __init__(self, path: str | os.PathLike[str], *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.sinks: list[Any] = []
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {key: _plain(value) for key, value in record.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")
        for sink in self.sinks:
            sink.write(clean)

    @contextmanager
    def attached(self, sinks: AbstractContextManager[list[Any]]) -> Iterator[None]:
        """Every record also goes to the sinks ``sinks`` opens, for the duration; then they close."""
        with sinks as opened:
            self.sinks = list(opened)
            try:
                yield
            finally:
                self.sinks = []


def announce(message: str | None) -> None:
    """One line on stderr, above a tqdm bar when one is shown (the bar stays intact); None: nothing."""
    if message is None:
        return
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Throughput:
    """Tokens per second of training steps since the last ``rate()`` call (time spent evaluating
    and saving between steps is not counted)."""

    def __init__(self) -> None:
        self._seconds = 0.0
        self._tokens = 0

    def add(self, tokens: int, seconds: float) -> None:
        self._tokens += tokens
        self._seconds += seconds

    def rate(self) -> float:
        rate = self._tokens / max(self._seconds, 1e-9)
        self._seconds, self._tokens = 0.0, 0
        return rate


def progress_bar(total: int, initial: int, *, enabled: bool) -> Any:
    """A tqdm bar over optimizer steps (ETA from tqdm); a no-op object when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


def train_record(
    window: list[dict[str, float]],
    step: int,
    tokens_seen: int,
    interval: tuple[float, float],
    tokens_per_s: float,
    elapsed: float,
) -> dict[str, Any]:
    """The ``train`` line for the steps in ``window`` (their ``train_step`` metrics): means of
    loss, nll and masked_fraction; the last step's lr and grad_norm."""
    means = {key: sum(m[key] for m in window) / len(window) for key in ("loss", "nll", "masked_fraction")}
    return {
        "kind": "train",
        "step": step,
        **means,
        "lr": window[-1]["lr"],
        "grad_norm": window[-1]["grad_norm"],
        "tokens_per_s": tokens_per_s,
        "tokens_seen": tokens_seen,
        "eps_min": interval[0],
        "eps_max": interval[1],
        "elapsed_s": elapsed,
    }
