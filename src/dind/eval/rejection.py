"""BD3-LM's degenerate-sample rejection: redraw rows whose tail has a low unigram entropy.

Off by default everywhere: rejecting and redrawing degenerate samples lowers (flatters) the
reported Gen PPL, so a report that uses it must say so.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dind.eval.entropy import batch_unigram_entropy
from dind.models.protocol import Denoiser
from dind.sampling.multistage import regenerate_rows
from dind.sampling.options import GenerateOptions
from dind.sampling.plan import StagePlan
from dind.sampling.stopping import BD3LM_MIN_ENTROPY, ENTROPY_WINDOW
from dind.sampling.trace import GenerationResult

REJECTION_WINDOW = ENTROPY_WINDOW
REJECTION_MIN_ENTROPY = BD3LM_MIN_ENTROPY


def low_entropy_rows(
    tokens: Tensor, *, window: int = REJECTION_WINDOW, min_entropy: float = REJECTION_MIN_ENTROPY
) -> Tensor:
    """(batch, length) -> (batch,) bool: rows BD3-LM would discard as degenerate.

    Once length > ``window``, a row is degenerate when the unigram entropy (nats) of its last
    ``window`` tokens is below ``min_entropy``. Shorter sequences are never rejected.
    """
    if tokens.shape[1] <= window:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    entropy = batch_unigram_entropy(tokens[:, -window:].cpu())
    return (entropy < min_entropy).to(tokens.device)


def redraw_low_entropy(
    model: Denoiser,
    plan: StagePlan,
    result: GenerationResult,
    *,
    options: GenerateOptions | None = None,
    max_retries: int = 10,
    window: int = REJECTION_WINDOW,
    min_entropy: float = REJECTION_MIN_ENTROPY,
) -> GenerationResult:
    """``result`` with its ``low_entropy_rows`` drawn again, at most ``max_retries`` times each
    (``dind.sampling.regenerate_rows``: attempt k of a row uses its own sub-stream, so each draw
    differs); ``result.attempts`` counts the draws. ``result``: a ``generate`` result of ``plan``
    with the same ``model`` and ``options``, before any EOS truncation. ``window`` / ``min_entropy``:
    the rule of ``low_entropy_rows`` (BD3-LM's 256 / 4.0 nats suit GPT-2 tokens; byte text needs a
    lower threshold: ``dind.sampling.stopping.default_min_entropy``)."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0 (got {max_retries!r})")
    for _ in range(max_retries):
        low = low_entropy_rows(result.tokens, window=window, min_entropy=min_entropy)
        redo = low.nonzero().flatten().tolist()
        if not redo:
            break
        result = regenerate_rows(model, plan, result, redo, options=options)
    return result
