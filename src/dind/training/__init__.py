"""Mixed-scale block-diffusion training: NELBO loss, block-size mixes, variance reduction, trainer."""

from dind.training.activation_checkpointing import (
    disable_activation_checkpointing,
    enable_activation_checkpointing,
)
from dind.training.block_sizes import (
    BLOCK_SIZE_DISTRIBUTIONS,
    BlockSizeDistribution,
    check_divides,
    draw_categorical,
)
from dind.training.checkpointing import atomic_directory, find_checkpoint, read_trainer_state
from dind.training.components import ComponentSpec, build_component
from dind.training.config import TrainConfig
from dind.training.data import DataConfig, TrainBatches, TrainingData
from dind.training.distributed import DistributedContext, init_distributed
from dind.training.ema import ExponentialMovingAverage
from dind.training.evaluation import Validation, evaluate, search_interval, validation_batch
from dind.training.loggers import METRIC_LOGGERS, MetricsSink
from dind.training.loss import DiffusionForward, LossResult, block_diffusion_logits, nelbo, nelbo_from_logits
from dind.training.model import ModelConfig
from dind.training.objective import NoiseDraw, Objective, ObjectiveConfig, sample_nelbo
from dind.training.optim import (
    LR_SCHEDULES,
    ConstantWithWarmup,
    CosineWithWarmup,
    LRSchedule,
    OptimConfig,
    build_adamw,
    lambda_lr,
    seek,
)
from dind.training.overrides import apply_overrides, load_mapping
from dind.training.settings import TrainSettings
from dind.training.setup import build_trainer
from dind.training.state import load_training_state, training_state
from dind.training.trainer import TRAINERS, Trainer
from dind.training.variance import (
    FULL_RANGE,
    SearchResult,
    VarianceConfig,
    candidate_intervals,
    clipped_schedule_search,
    sampling_interval,
    set_sampling_interval,
)

__all__ = [
    "BLOCK_SIZE_DISTRIBUTIONS",
    "FULL_RANGE",
    "LR_SCHEDULES",
    "METRIC_LOGGERS",
    "TRAINERS",
    "BlockSizeDistribution",
    "ComponentSpec",
    "ConstantWithWarmup",
    "CosineWithWarmup",
    "DataConfig",
    "DiffusionForward",
    "DistributedContext",
    "ExponentialMovingAverage",
    "LRSchedule",
    "LossResult",
    "MetricsSink",
    "ModelConfig",
    "NoiseDraw",
    "Objective",
    "ObjectiveConfig",
    "OptimConfig",
    "SearchResult",
    "TrainBatches",
    "TrainConfig",
    "TrainSettings",
    "Trainer",
    "TrainingData",
    "Validation",
    "VarianceConfig",
    "apply_overrides",
    "atomic_directory",
    "block_diffusion_logits",
    "build_component",
    "build_adamw",
    "build_trainer",
    "candidate_intervals",
    "check_divides",
    "clipped_schedule_search",
    "disable_activation_checkpointing",
    "draw_categorical",
    "enable_activation_checkpointing",
    "evaluate",
    "find_checkpoint",
    "init_distributed",
    "lambda_lr",
    "load_training_state",
    "load_mapping",
    "nelbo",
    "nelbo_from_logits",
    "read_trainer_state",
    "sample_nelbo",
    "sampling_interval",
    "search_interval",
    "seek",
    "set_sampling_interval",
    "training_state",
    "validation_batch",
]
