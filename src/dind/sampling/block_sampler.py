"""The per-stage block sampler: fill the masked positions of a draft block by block.

Blocks of the stage's size are aligned at multiples of B as in training (``FixedPartitioner``)
and walked left to right. With ``use_cache`` the exact KV cache is reset at the start of the
stage and each finished block is appended to it (the last block is not: nothing reads it);
without it, block [s, e) is denoised from ``logits(tokens[:, :e], block_size=B)[:, s:e]``, the
uncached reference. A stage whose single block spans the whole sequence (global stage) calls
``logits(tokens, block_size=None)`` either way.

With a ``window`` (``dind.sampling.windows``: a length beyond the model's context) a block attends
to its window only, fed as a sequence of its own, and the KV cache holds the window (re-filled
when it moves); a global stage refines window by window, left to right.

Inside a block an ``UnmaskingRule`` picks the positions to reveal each step; tokens are proposed
by ``proposal.propose`` and every reveal is reported to the ``ConfidenceTracker``. Only MASK
positions are ever written: prompt tokens and the tokens a previous stage kept never change.

Output layer only where needed: with a ``FeatureDenoiser`` (the DiT, its static step) a forward
stops before the output layer and the step projects to the vocabulary only the positions it
samples: the ones the rule reveals (first-hitting, ancestral: chosen before any token is
proposed), or every masked position of the block for confidence-ordered rules. Other denoisers'
logits are used as they come.

Randomness: counter-based (``dind.counter_rng``), no per-row loop. Each row has a stream key
(``RowStreams``, from its seed); the rule's uniforms at step k of block b of stage s are the
stream's draws keyed by (s, b, k, position) and the Gumbel vector of a proposed position by
(s, b, k, position, vocab index), all computed for the whole batch in a few int64 tensor ops.
A row's draws depend only on its own key, so row r of a batch equals row r sampled alone (as long
as the model's own numerics are batch-invariant), and the same seed gives the same sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import torch
from torch import Tensor

from dind.blocks import FixedPartitioner, Span
from dind.counter_rng import STAGE, RowStreams, as_row_streams
from dind.models.protocol import Denoiser
from dind.sampling.block_step import BlockContext, check_finite, unmask_step
from dind.sampling.cache_appends import Appends
from dind.sampling.confidence import ConfidenceTracker, record_reveals
from dind.sampling.nfe import CountingDenoiser
from dind.sampling.proposal import ProposalOptions
from dind.sampling.refine_cache import RefineCache
from dind.sampling.stopping import StopState
from dind.sampling.unmasking.base import UnmaskingRule
from dind.sampling.windows import Window, window_forward


@attrs.frozen(eq=False)  # holds tensors: compare their values, not ==
class StageOutcome:
    """tokens/scores (batch, length) after the stage; nfe (batch,) long, BD3-LM convention;
    forward_passes: raw model calls; model_time_s: seconds inside them."""

    tokens: Tensor
    scores: Tensor
    nfe: Tensor
    forward_passes: int
    model_time_s: float


def stage_spans(block_size: int | None, length: int) -> tuple[Span, ...]:
    """The blocks of a stage: aligned at multiples of ``block_size``; one span when global."""
    if block_size is None or block_size >= length:
        return ((0, length),)
    # short_last: only a variable-length sample's later stages meet it (``StagePlan.validate``
    # refuses a block size that does not divide the full length)
    return FixedPartitioner(block_size, ragged="short_last").spans(length)


def sample_stage(
    model: Denoiser,
    tokens: Tensor,
    scores: Tensor,
    *,
    block_size: int | None,
    rule: UnmaskingRule,
    tracker: ConfidenceTracker,
    generators: Sequence[torch.Generator] | None = None,
    streams: RowStreams | None = None,
    steps: int | None = None,
    proposal: ProposalOptions | None = None,
    use_cache: bool = True,
    on_block: Callable[[], None] | None = None,
    stage_index: int | None = None,
    refine: RefineCache | None = None,
    window: Window | None = None,
    stop: StopState | None = None,
) -> StageOutcome:
    """Fill every MASK of ``tokens`` (batch, length) with blocks of ``block_size`` (None = global).

    ``scores`` (batch, length) are the tracker's scores; revealed positions get new ones.
    Randomness: ``streams`` (one counter-based stream per row, what ``generate`` passes) or
    ``generators`` (one torch.Generator per row; one seed is drawn from each), exactly one of them.
    ``steps``: per-block step budget (None: ``rule.default_steps(width)``).
    ``proposal``: temperature and top-p (None: temperature 1, no nucleus).
    ``refine``: how a global stage reuses work across its steps (``dind.sampling.refine_cache``;
    None: exact, a full forward every step; refused for a stage with several blocks).
    ``window``: the stage's attention window (None: the whole sequence; ``dind.sampling.windows``).
    ``stop``: variable-length sampling (``dind.sampling.stopping``): checked after each block; a row
    that stops is padded in place, and the stage ends once every row has stopped.
    ``on_block`` is called after each block (progress bars). ``stage_index`` (1-based) only names
    the stage in errors: NaN or +inf logits, or a position whose logits are all -inf, raise
    ``NonFiniteError`` naming the stage, the block and the number of bad values.
    """
    if tokens.shape != scores.shape or tokens.dim() != 2:
        raise ValueError(
            f"tokens and scores must both be (batch, length) (got {tuple(tokens.shape)}, "
            f"{tuple(scores.shape)})"
        )
    streams = _stage_streams(generators, streams, tokens, stage_index)
    counting = CountingDenoiser(model)
    context = BlockContext(
        counting, rule, tracker, streams, steps, proposal or ProposalOptions(), stage_index,
        counting.project if counting.projects else None,
    )  # fmt: skip
    tokens, scores = tokens.clone(), scores.clone()
    batch, length = tokens.shape
    spans = stage_spans(block_size, length)
    nfe = torch.zeros(batch, dtype=torch.long, device=tokens.device)
    if refine is not None and len(spans) > 1:
        raise ValueError(
            f"a refine cache applies to a global stage only (got block_size {block_size} at length {length})"
        )
    if window is not None and len(spans) == 1:  # a global stage beyond its context: window by window
        for index, (lo, start, end) in enumerate(window.refine_spans(length)):
            forward = window_forward(counting, tokens, lo, start, end, refine)
            nfe += _fill_block(context, forward, tokens, scores, start, end, index)
            if on_block is not None:
                on_block()
            if stop is not None and stop.after_block(tokens, end):
                break
        return StageOutcome(tokens, scores, nfe, counting.forward_passes, counting.model_time_s)
    capacity = length if window is None else min(window.context, length)  # the cache holds the window
    cache = counting.new_cache(batch, capacity) if use_cache and len(spans) > 1 else None
    appends = Appends(counting, tokens, cache, window) if cache is not None else None
    for index, (start, end) in enumerate(spans):
        if refine is not None:
            forward = refine.forward(counting, tokens)
        elif appends is not None:
            forward = appends.forward(start, end)
        else:
            lo = 0 if window is None else window.block_start(end)
            forward = _block_forward(counting, tokens, start, end, block_size, single=len(spans) == 1, lo=lo)
        nfe += _fill_block(context, forward, tokens, scores, start, end, index)
        if on_block is not None:
            on_block()
        if stop is not None and stop.after_block(tokens, end):
            break
        if appends is not None and index < len(spans) - 1:
            appends.finished(start, end)
    return StageOutcome(tokens, scores, nfe, counting.forward_passes, counting.model_time_s)


def _stage_streams(
    generators: Sequence[torch.Generator] | None,
    streams: RowStreams | None,
    tokens: Tensor,
    stage_index: int | None,
) -> RowStreams:
    """The stage's row streams on the tokens' device, checked: one per row."""
    batch = tokens.shape[0]
    if (generators is None) == (streams is None):
        raise ValueError(
            "pass exactly one of generators= and streams= (got "
            f"{'both' if generators is not None else 'neither'})"
        )
    if generators is not None:
        if len(generators) != batch:
            raise ValueError(f"generators must have one per row (got {len(generators)}, batch {batch})")
        streams = as_row_streams(generators)
    if streams.batch != batch:
        raise ValueError(f"streams must have one key per row (got {streams.batch}, batch {batch})")
    return streams.to(tokens.device).child(STAGE, stage_index or 0)


def _block_forward(
    model: Denoiser,
    tokens: Tensor,
    start: int,
    end: int,
    block_size: int | None,
    *,
    single: bool,
    lo: int = 0,
) -> Callable[[], Tensor]:
    """A closure returning the block's current (batch, width, features) without a cache: the
    features of a ``FeatureDenoiser`` (``CountingDenoiser.projects``), else the logits; ``lo``: the
    first position the block attends to (its window's start), fed as position 0."""
    full = model.features if getattr(model, "projects", False) else model.logits
    if single:
        return lambda: full(tokens, block_size=None)
    return lambda: full(tokens[:, lo:end], block_size=block_size)[:, start - lo : end - lo]


def _fill_block(
    context: BlockContext,
    forward: Callable[[], Tensor],
    tokens: Tensor,
    scores: Tensor,
    start: int,
    end: int,
    block_index: int,
) -> Tensor:
    """Reveal every masked position of tokens[:, start:end] in place; returns (batch,) NFEs."""
    block = tokens[:, start:end]
    masked = block == context.model.mask_id
    nfe = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
    steps = context.steps or context.rule.default_steps(end - start)
    features: Tensor | None = None
    changed = torch.ones_like(nfe, dtype=torch.bool)  # content changed since the row's last forward
    step = 0
    streams = context.streams.child(block_index)
    while True:
        active = masked.any(dim=1)
        if not bool(active.any()):
            return nfe
        stale = active & changed
        if bool(stale.any()):
            fresh = forward()
            if context.project is None:  # logits: checked once per forward, every position
                fresh = fresh.float()
                check_finite(fresh, context, start, end)
            # p(x0) caching: rows with nothing new keep their last output (MDLM's ddpm_cache)
            keep_old = isinstance(fresh, Tensor) and features is not None and bool((active & ~changed).any())
            features = torch.where(stale[:, None, None], fresh, features) if keep_old else fresh
            nfe += stale
            changed &= ~stale
        reveal, revealed_tokens, revealed_scores = unmask_step(
            context, features, masked, streams.child(step), step, steps, (start, end)
        )
        block[reveal] = revealed_tokens
        new_scores = torch.zeros_like(scores[:, start:end])
        new_scores[reveal] = revealed_scores.to(new_scores.dtype)
        scores[:, start:end] = record_reveals(scores[:, start:end], reveal, new_scores)
        masked &= ~reveal
        changed |= reveal.any(dim=1)
        step += 1
        if step > max(end - start, steps):
            raise RuntimeError(
                f"unmasking rule {context.rule!r} did not finish a block of width "
                f"{end - start} within max(width, steps={steps}) steps"
            )
