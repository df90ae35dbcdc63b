"""The progress bar of a plan run: one tick per block (per refinement window of a windowed
global stage), over the stages still to run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from dind.sampling.block_sampler import stage_spans


def blocks_per_run(run: Any, skip: int = 0) -> int:
    """Blocks (refinement windows for a windowed global stage) the run walks after ``skip`` stages."""
    total = 0
    for stage, window in list(zip(run.plan, run.windows, strict=True))[skip:]:
        spans = stage_spans(stage.block_size, run.length)
        total += (
            len(window.refine_spans(run.length)) if window is not None and len(spans) == 1 else len(spans)
        )
    return total


@contextlib.contextmanager
def progress_bar(
    run: Any, *, enabled: bool, skip: int = 0, rows: int | None = None
) -> Iterator[Callable[[], None] | None]:
    """A tqdm bar over the blocks the run will walk (``skip``: stages already done), yielding its
    ``update`` (None when disabled)."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    desc = "blocks" if rows is None else f"blocks (redrawing {rows} rows)"
    with tqdm(total=blocks_per_run(run, skip), desc=desc, unit="block") as bar:
        yield bar.update
