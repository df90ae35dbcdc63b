"""Config -> objects, one function per piece: each ``build_*`` is usable alone, to build some
pieces from a config and make others by hand. ``build_trainer(config)`` is ``config.build()``.

The work is done where each piece is configured: ``ModelConfig.build`` (``dind.training.model``),
``DataConfig.build`` (``.data``), ``ObjectiveConfig.build`` (``.objective``), ``OptimConfig.build``
(``.optim``), ``TrainConfig.build`` (``.config``); a component spec becomes an object through
``dind.training.components.build_component``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dind.data import Tokenizer
from dind.training.block_sizes import BlockSizeDistribution
from dind.training.components import build_component
from dind.training.config import TrainConfig
from dind.training.config import load_plugins as import_plugins
from dind.training.data import DEFAULT_CACHE, DataConfig, TrainingData
from dind.training.distributed import DistributedContext
from dind.training.model import ModelConfig
from dind.training.objective import Objective, ObjectiveConfig
from dind.training.optim import LRSchedule, OptimConfig

__all__ = [
    "DEFAULT_CACHE",
    "build_block_sizes",
    "build_component",
    "build_data",
    "build_lr_schedule",
    "build_model",
    "build_objective",
    "build_optimizer",
    "build_tokenizer",
    "build_trainer",
    "load_plugins",
    "sequence_length",
]


def load_plugins(config: TrainConfig) -> None:
    """Import the config's ``plugins`` (before any name is looked up)."""
    import_plugins(config.plugins)


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh preset, or a BD3-LM-format checkpoint when ``init`` is set (fine-tuning)."""
    return config.build()


def build_tokenizer(config: DataConfig, model: nn.Module) -> Tokenizer:
    return config.build_tokenizer(model)


def sequence_length(config: DataConfig, model: nn.Module) -> int:
    return config.sequence_length(model)


def build_block_sizes(config: ObjectiveConfig) -> BlockSizeDistribution:
    return config.build_block_sizes()


def build_objective(config: ObjectiveConfig, length: int) -> Objective:
    return config.build(length)


def build_lr_schedule(config: OptimConfig, total_steps: int) -> LRSchedule:
    return config.schedule(total_steps)


def build_data(
    config: DataConfig, tokenizer: Tokenizer, length: int, context: DistributedContext, seed: int
) -> TrainingData:
    """Training batches in seeded order and the validation chunks (the main rank builds the token
    cache; the others wait for it)."""
    return config.build(tokenizer, length, context, seed)


def build_optimizer(
    config: OptimConfig, model: nn.Module, total_steps: int, device: torch.device | str | None = None
) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """AdamW over ``model``'s parameters (to be trained on ``device``) and the LambdaLR of the
    config's schedule."""
    return config.build(model, total_steps, device)


def build_trainer(config: TrainConfig, *, overwrite: bool = False, model: nn.Module | None = None) -> Any:
    """The components ``config`` describes and the trainer (``config.trainer``) holding them;
    ``model``: a ready model instead of ``config.model``'s."""
    return config.build(overwrite=overwrite, model=model)
