"""``TrainSettings``: how long, how often, where to. The Trainer's plain settings and, by
inheritance, the top-level keys of a ``TrainConfig`` (one definition and one validator per field).
Components (model, objective, data, optimizer, scheduler) are passed to the Trainer as objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

import attrs

from dind.training.components import ComponentSpec
from dind.training.data import TrainBatches, TrainingData
from dind.training.fields import one_of, optional_float, positive_int_or_null, positive_number_or_null
from dind.training.loggers import check_logger_specs, logger_specs
from dind.training.variance import VarianceConfig
from dind.validation import positive_int

__all__ = ["Precision", "RecordedConfig", "TrainBatches", "TrainSettings", "TrainingData"]  # data: in .data

Precision = Literal["auto", "fp32", "bf16"]


class RecordedConfig(Protocol):
    """What a Trainer records of the config it was built from (a ``TrainConfig``)."""

    def to_yaml(self) -> str: ...


@attrs.frozen
class TrainSettings:
    """``batch_size`` is global (sequences per optimizer step, all processes); each process runs
    ``micro_batch_size`` rows per forward (null: batch_size / world size) and accumulates gradients
    over batch_size / (micro_batch_size * world size) forwards. ``ema_decay`` null = no EMA;
    ``grad_clip`` null = no clipping; ``eval_every`` / ``save_every`` null = never. ``eval_seed``
    seeds the validation noise, not ``seed``: runs that differ in ``seed`` evaluate on the same
    draws, so their curves compare. ``loggers``:
    where metrics go besides metrics.jsonl (``dind.training.loggers``: tensorboard, wandb)."""

    steps: int = attrs.field(default=1000, validator=positive_int)
    batch_size: int = attrs.field(default=32, validator=positive_int)
    micro_batch_size: int | None = attrs.field(default=None, validator=positive_int_or_null)
    seed: int = 0
    ema_decay: float | None = attrs.field(
        default=0.9999,
        converter=optional_float("ema_decay"),
        validator=attrs.validators.optional([attrs.validators.ge(0.0), attrs.validators.lt(1.0)]),
    )
    grad_clip: float | None = attrs.field(
        default=1.0, converter=optional_float("grad_clip"), validator=positive_number_or_null
    )
    precision: Precision = attrs.field(default="auto", validator=one_of("auto", "fp32", "bf16"))
    activation_checkpointing: bool = False
    compile: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    out_dir: str = attrs.field(default="runs/train", converter=str)
    log_every: int = attrs.field(default=10, validator=positive_int)
    eval_every: int | None = attrs.field(default=500, validator=positive_int_or_null)
    eval_batches: int = attrs.field(default=16, validator=positive_int)
    eval_seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    eval_at_start: bool = True
    variance: VarianceConfig = attrs.field(factory=VarianceConfig)
    save_every: int | None = attrs.field(default=1000, validator=positive_int_or_null)
    keep_every: int | None = attrs.field(default=None, validator=positive_int_or_null)
    progress: bool = True
    loggers: tuple[ComponentSpec, ...] = attrs.field(
        default=(), converter=logger_specs, validator=check_logger_specs
    )

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], *, caller: str = "TrainSettings") -> TrainSettings:
        """``cls(**keywords)``, but a name that is not a setting is an error listing the valid ones."""
        valid = [field.name for field in attrs.fields(cls)]
        unknown = sorted(set(keywords) - set(valid))
        if unknown:
            raise TypeError(f"{caller} got unknown settings {unknown}; valid settings: {valid}")
        return cls(**keywords)

    @classmethod
    def from_config(cls, config: TrainSettings) -> TrainSettings:
        """The settings part of a ``TrainConfig`` (or of any TrainSettings subclass)."""
        return cls(**{field.name: getattr(config, field.name) for field in attrs.fields(cls)})

    def batch_geometry(self, world_size: int) -> tuple[int, int]:
        """(micro-batch rows per process, accumulation steps) for the global ``batch_size``."""
        micro = self.micro_batch_size or self.batch_size // world_size
        if micro < 1 or self.batch_size % (micro * world_size):
            raise ValueError(
                "batch_size must be a multiple of micro_batch_size * world size "
                f"(got {self.batch_size}, {self.micro_batch_size}, world size {world_size})"
            )
        return micro, self.batch_size // (micro * world_size)
