"""Config -> objects: the one place in training where names become components.

``build_trainer(config)`` (also ``TrainConfig.build()``) loads the config's plugins, then builds
the model, objective, data, optimizer and LambdaLR and hands them to the registered trainer. Each
``build_*`` is usable alone, to build some pieces from a config and make others by hand.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dind.data import CORPORA, TOKENIZERS, Tokenizer
from dind.registry import Registry, RegistryError
from dind.schedules import SCHEDULES, TIME_SAMPLERS
from dind.training.block_sizes import (
    BLOCK_SIZE_DISTRIBUTIONS,
    BlockSizeDistribution,
    check_divides,
    parse_block_sizes,
)
from dind.training.config import DataConfig, ModelConfig, ObjectiveConfig, OptimConfig, TrainConfig
from dind.training.distributed import DistributedContext, init_distributed
from dind.training.objective import Objective
from dind.training.optim import LR_SCHEDULES, LRSchedule, build_adamw, lambda_lr
from dind.training.settings import TrainingData, TrainSettings

DEFAULT_CACHE = Path("~/.cache/dind/tokens")


def build_component(
    registry: Registry[Any], name: str, options: dict[str, Any], *, key: str, **given: Any
) -> Any:
    """``registry``'s ``name`` built with ``options`` (and the ``given`` arguments the caller
    supplies); errors name the config key: an unknown name lists the known ones, an unknown option
    lists the accepted ones."""
    try:
        factory = registry.get(name)
    except RegistryError as error:
        raise RegistryError(f"{key}: {error}") from None
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return factory(**given, **options)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            shown = [n for n in accepted if n not in given]
            raise ValueError(f"{key} {name!r} does not take options {unknown} (accepted: {shown})")
    return factory(**given, **options)


def load_plugins(config: TrainConfig) -> None:
    """Import the config's ``plugins`` (before any name is looked up)."""
    from dind.plugins import load_plugin

    for spec in config.plugins:
        load_plugin(spec)


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh preset, or a BD3-LM-format checkpoint when ``init`` is set (fine-tuning)."""
    from dind import load, models

    if config.init is not None:
        if config.options:
            raise ValueError(f"model.options cannot change a checkpoint's model (got {config.options})")
        if not Path(config.init).expanduser().exists() and config.init in models.PRESETS:
            raise ValueError(
                f"model.init must be a checkpoint directory or hub id (got the preset name {config.init!r}; "
                "set model.preset for a fresh model)"
            )
        try:
            return load(config.init)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"model.init: {error}") from None
    try:
        models.PRESETS.get(config.preset)
    except RegistryError as error:
        raise RegistryError(f"model.preset: {error}") from None
    return models.build(config.preset, **config.options)


def build_tokenizer(config: DataConfig, model: nn.Module) -> Tokenizer:
    tokenizer = build_component(TOKENIZERS, config.tokenizer, {}, key="data.tokenizer")
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
        return build_component(
            BLOCK_SIZE_DISTRIBUTIONS,
            config.block_sizes,
            config.block_size_options,
            key="objective.block_sizes",
        )
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
        schedule=build_component(
            SCHEDULES, config.schedule, config.schedule_options, key="objective.schedule"
        ),
        time_sampler=build_component(TIME_SAMPLERS, config.time_sampler, {}, key="objective.time_sampler"),
        block_size_draw=config.block_size_draw,
        resample=config.resample,
        freeze_first_token=config.freeze_first_token,
    )


def build_lr_schedule(config: OptimConfig, total_steps: int) -> LRSchedule:
    return build_component(
        LR_SCHEDULES,
        config.lr_schedule,
        config.lr_schedule_options,
        key="optim.lr_schedule",
        warmup_steps=config.warmup_steps,
        total_steps=total_steps,
    )


def build_data(
    config: DataConfig, tokenizer: Tokenizer, length: int, context: DistributedContext, seed: int
) -> TrainingData:
    """Training batches in seeded order and the validation chunks. The token cache is built once,
    by the main rank; the others wait for it."""
    source = build_component(CORPORA, config.corpus, config.corpus_options, key="data.corpus")
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else DEFAULT_CACHE.expanduser()
    arguments: dict[str, Any] = {
        "length": length,
        "cache_dir": cache_dir,
        "validation_fraction": config.validation_fraction,
        "split_seed": config.split_seed,
        "chunk_format": config.chunk_format,
        "seed": seed,
        "shuffle": config.shuffle,
    }
    if context.is_main:
        TrainingData.from_corpus(source, tokenizer, **arguments)  # builds the cache
    context.barrier()
    return TrainingData.from_corpus(source, tokenizer, **arguments)  # found, not rebuilt


def build_optimizer(
    config: OptimConfig, model: nn.Module, total_steps: int, device: torch.device | str | None = None
) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """AdamW over ``model``'s parameters (to be trained on ``device``) and the LambdaLR of the
    config's schedule."""
    optimizer = build_adamw(
        model.named_parameters(),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
        implementation=config.implementation,
        device=device,
    )
    return optimizer, lambda_lr(optimizer, build_lr_schedule(config, total_steps))


def build_trainer(config: TrainConfig, *, overwrite: bool = False, model: nn.Module | None = None) -> Any:
    """The components ``config`` describes and the trainer (``config.trainer``) holding them;
    ``model``: a ready model instead of ``config.model``'s."""
    from dind.training.trainer import TRAINERS

    load_plugins(config)
    trainer_class = TRAINERS.get(config.trainer)
    settings = TrainSettings.from_config(config)
    context = init_distributed(config.distributed, config.device)
    settings.batch_geometry(context.world_size)  # fail before any work
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_model(config.model) if model is None else model
    torch.manual_seed(config.seed + context.rank)  # dropout differs between ranks
    tokenizer = build_tokenizer(config.data, model)
    length = sequence_length(config.data, model)
    objective = build_objective(config.objective, length)
    data = build_data(config.data, tokenizer, length, context, config.seed)
    optimizer, scheduler = build_optimizer(config.optim, model, config.steps, context.device)
    return trainer_class(
        model,
        objective,
        data,
        optimizer,
        scheduler,
        context=context,
        config=config,
        overwrite=overwrite,
        **attrs.asdict(settings, recurse=False),
    )
