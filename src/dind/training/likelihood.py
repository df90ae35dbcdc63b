"""Likelihood evaluation as BD3-LM reports it: the NELBO in nats per token, and the perplexity
bound exp(NELBO), of a model on held-out chunks at one or more fixed block sizes.

The estimator is the trainer's validation (``dind.training.evaluation``) at one block size B:
batch i holds chunks ``[i * rows, (i + 1) * rows)`` in corpus order, its noise comes from
``noise_generator(seed, i)``, one time per (sequence, block) drawn stratified over batch x blocks in
the unclipped range (1e-3, 1), position 0 (BOS) never masked, no mask resampling, and the token
losses summed over all batches divided by every position scored (BOS included, as BD3-LM counts
it). With the trainer's rows, batches and seed it reproduces ``val_nelbo_block<B>`` exactly.
Unlike the trainer it may run every chunk (the last batch may then be short).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from dind.data import TextFiles, TokenChunks, Tokenizer, build_token_cache
from dind.data.packing import ChunkFormat
from dind.schedules import LogLinearSchedule, NoiseSchedule, StratifiedTimeSampler, TimeSampler
from dind.training.block_sizes import FixedBlockSize
from dind.training.evaluation import noise_generator
from dind.training.loss import DiffusionForward
from dind.training.objective import Objective, sample_nelbo
from dind.training.variance import FULL_RANGE
from dind.validation import optional_positive_int, positive_int

_SEED_LIMIT = 2**32  # seed * 1_000_003 + batch index must fit a torch seed


def _seed(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _SEED_LIMIT:
        raise ValueError(f"{attribute.name} must be an integer in [0, 2**32) (got {value!r})")


@attrs.frozen
class LikelihoodOptions:
    """``batch_size``: chunks per forward; ``num_batches``: the first batches scored (None: every
    chunk, the last batch possibly short); ``seed``: the noise seed (batch i: ``(seed, i)``);
    ``autocast``: the autocast dtype (None: the model's own precision); ``progress``: a tqdm bar."""

    batch_size: int = attrs.field(default=8, validator=positive_int)
    num_batches: int | None = attrs.field(default=None, validator=optional_positive_int)
    seed: int = attrs.field(default=0, validator=_seed)
    schedule: NoiseSchedule = attrs.field(factory=LogLinearSchedule)
    time_sampler: TimeSampler = attrs.field(factory=StratifiedTimeSampler)
    time_range: tuple[float, float] = FULL_RANGE
    autocast: torch.dtype | None = None
    progress: bool = False


@attrs.frozen
class BlockSizeLikelihood:
    """The NELBO at one block size. ``nelbo``: nats per position (the sum of token losses over every
    position scored, BOS included); ``ppl_bound``: exp(nelbo); ``stderr``: the standard error of the
    mean over sequences (treating sequences as independent: stratified times make it conservative;
    None for one sequence);
    ``tokens``: positions scored (sequences x length); ``masked``: positions the draws masked;
    ``per_sequence``: each sequence's NELBO in chunk order (what a paired comparison of two models
    on the same chunks and noise pairs up)."""

    block_size: int
    nelbo: float
    ppl_bound: float
    stderr: float | None
    tokens: int
    sequences: int
    batches: int
    masked: int
    seconds: float
    per_sequence: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def check_block_sizes(block_sizes: Sequence[int], length: int, *, parameter: str = "block_sizes") -> None:
    """Each size a positive integer dividing ``length``, none repeated; the error names ``parameter``."""
    if not block_sizes:
        raise ValueError(f"{parameter} must name at least one block size (got none)")
    for size in block_sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or length % size:
            raise ValueError(f"{parameter} must divide the length (got {size!r}, length {length})")
    if len(set(block_sizes)) != len(block_sizes):
        raise ValueError(f"{parameter} must not repeat a size (got {list(block_sizes)})")


def batch_count(chunks: Any, options: LikelihoodOptions) -> int:
    """How many batches ``options`` scores from ``chunks`` (a ValueError names the numbers)."""
    available = math.ceil(len(chunks) / options.batch_size)
    if available == 0:
        raise ValueError("chunks must hold at least one complete chunk (got 0)")
    if options.num_batches is None:
        return available
    if options.num_batches > available:
        raise ValueError(
            f"num_batches must be <= the batches the data holds (got {options.num_batches}; "
            f"{len(chunks)} chunks make {available} batches of {options.batch_size})"
        )
    return options.num_batches


@torch.no_grad()
def likelihood(
    model: nn.Module,
    chunks: Any,
    block_sizes: Sequence[int],
    options: LikelihoodOptions | None = None,
) -> list[BlockSizeLikelihood]:
    """The NELBO of ``model`` on ``chunks`` (indexed by a (n,) long tensor -> (n, length) tokens,
    with ``len``: a ``TokenChunks``, or a tensor) at each of ``block_sizes`` (``length``: one global
    block). Runs ``model`` as it is (call ``model.eval()`` for dropout off)."""
    options = options or LikelihoodOptions()
    count = batch_count(chunks, options)
    check_block_sizes(list(block_sizes), _length(chunks))
    forward = DiffusionForward(model) if hasattr(model, "training_logits") else model
    return [_one_size(forward, model.mask_id, chunks, int(size), count, options) for size in block_sizes]


def _one_size(
    forward: nn.Module, mask_id: int, chunks: Any, block_size: int, count: int, options: LikelihoodOptions
) -> BlockSizeLikelihood:
    from tqdm.auto import tqdm

    objective = Objective(
        block_sizes=FixedBlockSize(block_size), schedule=options.schedule, time_sampler=options.time_sampler
    )
    device = next(forward.parameters()).device
    autocast = nullcontext() if options.autocast is None else torch.autocast(device.type, options.autocast)
    per_sequence, masked, started = [], 0, time.perf_counter()
    bar = tqdm(range(count), desc=f"block {block_size}", unit="batch", disable=not options.progress)
    for index in bar:
        rows = torch.arange(index * options.batch_size, min((index + 1) * options.batch_size, len(chunks)))
        with autocast:
            result = sample_nelbo(
                forward,
                chunks[rows],
                objective,
                low=options.time_range[0],
                high=options.time_range[1],
                generator=noise_generator(options.seed, index),
                block_sizes=block_size,
                mask_id=mask_id,
            )
        # fixed block size: every block has block_size positions, so a row's mean is its blocks' mean
        per_sequence.append(result.block_losses.double().nanmean(1).cpu())
        masked += int(result.masked)
    values = torch.cat(per_sequence)
    nelbo = float(values.mean())
    return BlockSizeLikelihood(
        block_size=block_size,
        nelbo=nelbo,
        ppl_bound=math.exp(min(nelbo, 700.0)),
        stderr=float(values.std() / math.sqrt(len(values))) if len(values) > 1 else None,
        tokens=len(values) * _length(chunks),
        sequences=len(values),
        batches=count,
        masked=masked,
        seconds=time.perf_counter() - started,
        per_sequence=tuple(values.tolist()),
    )


def _length(chunks: Any) -> int:
    """Tokens per chunk: ``TokenChunks.length``, or a tensor's last dimension."""
    return int(chunks.length if hasattr(chunks, "length") else chunks.shape[-1])


def text_chunks(
    paths: Sequence[str | os.PathLike[str]],
    tokenizer: Tokenizer,
    length: int,
    *,
    chunk_format: ChunkFormat = "bos",
    pattern: str = "*.txt",
) -> TokenChunks:
    """Text files (and the files matching ``pattern`` under directories) packed as the trainer
    packs them: each document's tokens then EOS, concatenated in sorted key order, cut into chunks
    of ``length`` (``chunk_format`` "bos": EOS-as-BOS then ``length - 1`` stream tokens); the tail
    shorter than a chunk is dropped. Held in memory (tokenised in a temporary cache)."""
    source = TextFiles(tuple(str(p) for p in paths), pattern=pattern)
    with tempfile.TemporaryDirectory(prefix="dind-nelbo-") as directory:
        cache = build_token_cache(source, tokenizer, directory, validation_fraction=0.0)
        chunks = TokenChunks.open(cache, "train", length, chunk_format)
        return attrs.evolve(chunks, tokens=np.array(chunks.tokens))
