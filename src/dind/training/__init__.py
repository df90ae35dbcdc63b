"""Mixed-scale block-diffusion training: NELBO loss, block-size mixes, variance reduction, trainer."""

from dind.training.activation_checkpointing import (
    disable_activation_checkpointing,
    enable_activation_checkpointing,
)
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS, BlockSizeDistribution, check_divides
from dind.training.checkpointing import atomic_directory, find_checkpoint, read_trainer_state
from dind.training.config import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    VarianceConfig,
    apply_overrides,
    load_mapping,
)
from dind.training.distributed import DistributedContext, init_distributed
from dind.training.ema import ExponentialMovingAverage
from dind.training.loss import DiffusionForward, LossResult, block_diffusion_logits, nelbo, nelbo_from_logits
from dind.training.objective import NoiseDraw, Objective, sample_nelbo
from dind.training.optim import LR_SCHEDULES, ConstantWithWarmup, CosineWithWarmup, LRSchedule, build_adamw
from dind.training.trainer import TRAINERS, Trainer
from dind.training.variance import (
    FULL_RANGE,
    SearchResult,
    candidate_intervals,
    clipped_schedule_search,
    sampling_interval,
    set_sampling_interval,
)

__all__ = [
    "BLOCK_SIZE_DISTRIBUTIONS",
    "FULL_RANGE",
    "LR_SCHEDULES",
    "TRAINERS",
    "BlockSizeDistribution",
    "ConstantWithWarmup",
    "CosineWithWarmup",
    "DataConfig",
    "DiffusionForward",
    "DistributedContext",
    "ExponentialMovingAverage",
    "LRSchedule",
    "LossResult",
    "ModelConfig",
    "NoiseDraw",
    "Objective",
    "ObjectiveConfig",
    "OptimConfig",
    "SearchResult",
    "TrainConfig",
    "Trainer",
    "VarianceConfig",
    "apply_overrides",
    "atomic_directory",
    "block_diffusion_logits",
    "build_adamw",
    "candidate_intervals",
    "check_divides",
    "clipped_schedule_search",
    "disable_activation_checkpointing",
    "enable_activation_checkpointing",
    "find_checkpoint",
    "init_distributed",
    "load_mapping",
    "nelbo",
    "nelbo_from_logits",
    "read_trainer_state",
    "sample_nelbo",
    "sampling_interval",
    "set_sampling_interval",
]
