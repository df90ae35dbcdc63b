"""Config -> objects: the one place in training where names become components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dind.data import CORPORA, TOKENIZERS, ChunkBatches, TokenChunks, Tokenizer, build_token_cache
from dind.schedules import SCHEDULES, TIME_SAMPLERS
from dind.training.block_sizes import (
    BLOCK_SIZE_DISTRIBUTIONS,
    BlockSizeDistribution,
    check_divides,
    parse_block_sizes,
)
from dind.training.config import DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from dind.training.distributed import DistributedContext
from dind.training.objective import Objective
from dind.training.optim import LR_SCHEDULES, LRSchedule

DEFAULT_CACHE = Path("~/.cache/dind/tokens")


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh preset, or a BD3-LM-format checkpoint when ``init`` is set (fine-tuning)."""
    from dind import models

    if config.init is not None:
        if config.options:
            raise ValueError(f"model.options cannot change a checkpoint's model (got {config.options})")
        return models.from_pretrained(config.init)
    return models.build(config.preset, **config.options)


def build_tokenizer(config: DataConfig, model: nn.Module) -> Tokenizer:
    tokenizer = TOKENIZERS.build(config.tokenizer)
    if tokenizer.model_vocab_size != model.vocab_size or tokenizer.mask_id != model.mask_id:
        raise ValueError(
            f"tokenizer {config.tokenizer!r} needs a model vocabulary of {tokenizer.model_vocab_size} with "
            f"MASK {tokenizer.mask_id} (got vocab_size={model.vocab_size}, mask_id={model.mask_id})"
        )
    return tokenizer


def sequence_length(config: DataConfig, model: nn.Module) -> int:
    model_length = int(model.config.model_length)
    length = model_length if config.length is None else config.length
    if length > model_length:
        raise ValueError(f"data.length must be <= the model's model_length (got {length}, {model_length})")
    return length


def build_block_sizes(config: ObjectiveConfig) -> BlockSizeDistribution:
    """A registry name with ``block_size_options`` ("bimodal" + {draft: 4, ...}), or the text form
    alone ("bimodal:4,1024,0.1", "fixed:4", "uniform:4,16,64")."""
    if ":" not in config.block_sizes:
        return BLOCK_SIZE_DISTRIBUTIONS.build(config.block_sizes, **config.block_size_options)
    if config.block_size_options:
        raise ValueError(
            "objective.block_size_options must be empty when objective.block_sizes is in text form "
            f"(got {config.block_sizes!r} with {config.block_size_options})"
        )
    return parse_block_sizes(config.block_sizes)


def build_objective(config: ObjectiveConfig, length: int) -> Objective:
    distribution = build_block_sizes(config)
    check_divides(distribution, length)
    return Objective(
        block_sizes=distribution,
        schedule=SCHEDULES.build(config.schedule, **config.schedule_options),
        time_sampler=TIME_SAMPLERS.build(config.time_sampler),
        block_size_draw=config.block_size_draw,
        resample=config.resample,
        freeze_first_token=config.freeze_first_token,
    )


def build_lr_schedule(config: OptimConfig, total_steps: int) -> LRSchedule:
    return LR_SCHEDULES.build(
        config.lr_schedule,
        warmup_steps=config.warmup_steps,
        total_steps=total_steps,
        **config.lr_schedule_options,
    )


def build_data(
    config: DataConfig, tokenizer: Tokenizer, length: int, context: DistributedContext, seed: int
) -> tuple[ChunkBatches, TokenChunks]:
    """(training batches in seeded order, validation chunks). The token cache is built once, by the
    main rank; the others wait for it."""
    source = CORPORA.build(config.corpus, **config.corpus_options)
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else DEFAULT_CACHE.expanduser()
    arguments: dict[str, Any] = {
        "validation_fraction": config.validation_fraction,
        "split_seed": config.split_seed,
    }
    if context.is_main:
        build_token_cache(source, tokenizer, cache_dir, **arguments)
    context.barrier()
    cache = build_token_cache(source, tokenizer, cache_dir, **arguments)  # found, not rebuilt
    train = TokenChunks.open(cache, "train", length, config.chunk_format)
    validation = TokenChunks.open(cache, "validation", length, config.chunk_format)
    return ChunkBatches(train, seed=seed, shuffle=config.shuffle), validation


def batch_geometry(config: TrainConfig, world_size: int) -> tuple[int, int]:
    """(micro-batch rows per process, accumulation steps) for the global ``batch_size``."""
    micro = config.micro_batch_size or config.batch_size // world_size
    if micro < 1 or config.batch_size % (micro * world_size):
        raise ValueError(
            "batch_size must be a multiple of micro_batch_size * world size "
            f"(got {config.batch_size}, {config.micro_batch_size}, world size {world_size})"
        )
    return micro, config.batch_size // (micro * world_size)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast: always for "bf16", on CUDA for "auto"; None = fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None
