"""Context windows: sampling sequences longer than the context a model was trained on.

A stage's ``context`` C (plan text ``{context=C}``; default ``GenerateOptions.context``, else the
model's ``model_length``) bounds what any forward sees. At ``length <= C`` nothing changes. Beyond:

- A block stage (blocks of B) denoises block [s, e) attending to the window [lo, e): the block
  and the earlier positions inside it, ``lo = max(0, ceil((e - C) / S) * S)`` with ``slide`` S
  (default B: BD3-LM's rule, the most recent C - B positions before every block). The window is
  fed as a sequence of its own (positions 0 .. e - lo - 1, block-causal, blocks aligned at lo), so
  the model never sees a position or a span it was not trained on. The KV cache holds the window
  only (C positions, not the length): when the window moves, the cache is emptied and its earlier
  part [lo, s) is written again in the block's first forward (fused with it), so every cached
  step equals the uncached forward over the same window. A larger S moves the window less often
  (cheaper: one re-fill per S positions) and leaves at least C - S positions of left context.
  C must be a multiple of B, S a multiple of B and at most C.
- A global (refinement) stage refines in windows, left to right: window k covers [lo_k, hi_k)
  with ``hi_0 = C``, ``hi_k = min(length, hi_(k-1) + S)``, ``lo_k = hi_k - C``; it reveals the masked
  positions of [hi_(k-1), hi_k) with full attention over the window, i.e. seeing its left context
  [lo_k, hi_(k-1)) (already refined) and nothing to its right. S (default C // 2) is how many new
  positions each window refines; 1 <= S <= C.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch import Tensor

from dind.sampling.refine_cache import ExactRefine, RefineCache
from dind.validation import positive_int


class WindowWarning(UserWarning):
    """Generation beyond the model's context: it runs in windows (said once per call)."""


@attrs.frozen
class Window:
    """A stage's window: at most ``context`` positions per forward, moving by ``slide``."""

    context: int = attrs.field(validator=positive_int)
    slide: int = attrs.field(validator=positive_int)

    def block_start(self, end: int) -> int:
        """lo of the window of a block ending at ``end``: the first position it attends to."""
        return max(0, math.ceil((end - self.context) / self.slide) * self.slide)

    def refine_spans(self, length: int) -> tuple[tuple[int, int, int], ...]:
        """(lo, start, end) of each refinement window: positions [start, end) are revealed with
        attention over [lo, end)."""
        spans, end = [(0, 0, min(self.context, length))], min(self.context, length)
        while end < length:
            new_end = min(length, end + self.slide)
            spans.append((new_end - self.context, end, new_end))
            end = new_end
        return tuple(spans)


def stage_window(
    block_size: int | None,
    length: int,
    *,
    context: int | None,
    slide: int | None,
    stage_index: int,
) -> Window | None:
    """The window of a stage with these settings, checked (None when ``context`` covers the length)."""
    if context is None or context >= length:
        return None
    where = f"stage {stage_index}"
    if block_size is None or block_size >= length:
        slide = slide if slide is not None else max(1, context // 2)
        if not 1 <= slide <= context:
            raise ValueError(f"{where}: slide must be in [1, context] (got slide {slide}, context {context})")
        return Window(context, slide)
    if context % block_size:
        raise ValueError(
            f"{where}: context must be a multiple of the block size (got context {context}, block size "
            f"{block_size}): a window holds whole blocks"
        )
    slide = slide if slide is not None else block_size
    if slide % block_size or slide > context:
        raise ValueError(
            f"{where}: slide must be a multiple of the block size and at most the context (got slide "
            f"{slide}, block size {block_size}, context {context})"
        )
    return Window(context, slide)


def plan_windows(
    model: Any, stages: Any, length: int, default_context: int | None
) -> tuple[Window | None, ...]:
    """Each stage's window for ``model`` at ``length``; a context beyond the model's
    ``model_length`` is refused; a length beyond it runs in windows and says so (``WindowWarning``)."""
    limit = getattr(model, "model_length", None)
    if default_context is not None and limit is not None and default_context > limit:
        raise ValueError(
            "context must be <= the model's model_length, the context it was trained on "
            f"(got {default_context}, model_length {limit})"
        )
    windows = []
    for index, stage in enumerate(stages, start=1):
        if stage.context is not None and limit is not None and stage.context > limit:
            raise ValueError(
                f"stage {index}: context must be <= the model's model_length, the context it was trained on "
                f"(got {stage.context}, model_length {limit})"
            )
        context = stage.context if stage.context is not None else default_context
        context = context if context is not None else limit
        windows.append(
            stage_window(stage.block_size, length, context=context, slide=stage.slide, stage_index=index)
        )
    if limit is not None and length > limit:
        sizes = sorted({window.context for window in windows if window is not None})
        warnings.warn(
            f"length {length} > the model's model_length {limit}: every stage attends to windows of at most "
            f"{', '.join(map(str, sizes))} positions (dind.sampling.windows; set them with {{context=N}} in "
            "the plan or GenerateOptions(context=N))",
            WindowWarning,
            stacklevel=4,
        )
    return tuple(windows)


def window_forward(
    model: Any, tokens: Tensor, lo: int, start: int, end: int, refine: RefineCache | None
) -> Callable[[], Any]:
    """A refinement window: features of [start, end) from a full-attention forward over [lo, end)
    (through the stage's refine cache, on a view of the live tokens)."""
    inner = (refine if refine is not None else ExactRefine()).forward(model, tokens[:, lo:end])
    offset = start - lo

    def call() -> Any:
        features = inner()
        return features[:, offset:] if isinstance(features, Tensor) else _Offset(features, offset)

    return call


@attrs.frozen
class _Offset:
    """Features of a window read with masks of its last positions only (the first ``offset`` are
    context): ``result[where]`` pads ``where`` on the left."""

    features: Any
    offset: int

    def __getitem__(self, where: Tensor) -> Tensor:
        padded = torch.zeros(
            where.shape[0], self.offset + where.shape[1], dtype=torch.bool, device=where.device
        )
        padded[:, self.offset :] = where
        return self.features[padded]
