"""The KV cache of a block stage: finished blocks appended, fused into the next block's first forward
where the model can, and the window's earlier blocks written again when a window moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from torch import Tensor

from dind.sampling.nfe import CountingDenoiser
from dind.sampling.windows import Window


@attrs.define(eq=False)
class Appends:
    """The finished blocks not yet in the KV cache. A model with ``append_and_features`` (the DiT)
    appends them in the next block's first forward (one pass instead of two, the same numbers to
    fp32 round-off); any other appends each block on its own as soon as it is finished.

    With a ``window`` the cache holds positions [origin, ...) of the current window at cache
    positions 0, 1, ...; when a block's window starts elsewhere, the cache is emptied and the
    window's earlier blocks [lo, start) are written again (pending, fused into the block's first
    forward), so each cached forward equals the uncached forward over the window."""

    model: CountingDenoiser
    tokens: Tensor
    cache: Any
    window: Window | None = None
    origin: int = 0  # the sequence position at cache position 0
    pending: tuple[int, int] | None = None
    width: int = 0  # the width of the finished blocks

    @property
    def fuses(self) -> bool:
        return self.model.projects and hasattr(self.model.model, "append_and_features")

    def forward(self, start: int, end: int) -> Callable[[], Tensor]:
        cached = self.model.cached_features if self.model.projects else self.model.cached_logits
        if self.window is not None and self.window.block_start(end) != self.origin:
            self._move(self.window.block_start(end), start, end)

        def call() -> Tensor:
            if self.pending is not None and (self.pending[1] - self.pending[0]) % (end - start):
                self._flush()  # a shorter last block (a variable-length row): append on their own
            if self.pending is None:
                return cached(self.tokens[:, start:end], cache=self.cache, start=start - self.origin)
            (first, last), self.pending = self.pending, None
            done, block = self.tokens[:, first:last], self.tokens[:, start:end]
            return self.model.append_and_features(done, block, cache=self.cache, start=first - self.origin)

        return call

    def _move(self, lo: int, start: int, end: int) -> None:
        """Empty the cache for a window starting at ``lo`` and queue (or write) [lo, start)."""
        if callable(getattr(self.cache, "reset", None)):  # the DiT's caches: reuse the buffers
            self.cache.reset()
        else:
            self.cache = self.model.new_cache(self.tokens.shape[0], self.window.context)
        self.origin, self.pending = lo, None
        width = end - start
        for first in range(lo, start, width):
            self.finished(first, first + width)

    def _flush(self) -> None:
        (first, last), self.pending = self.pending, None
        for begin in range(first, last, self.width):
            stop = begin + self.width
            block = self.tokens[:, begin:stop]
            self.model.append_to_cache(block, cache=self.cache, start=begin - self.origin)

    def finished(self, start: int, end: int) -> None:
        self.width = end - start
        if not self.fuses:
            self.model.append_to_cache(self.tokens[:, start:end], cache=self.cache, start=start - self.origin)
        else:  # a block with nothing masked made no forward: its positions join the queue
            self.pending = (start, end) if self.pending is None else (self.pending[0], end)
