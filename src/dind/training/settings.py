"""The Trainer's plain inputs: ``TrainingData`` (what it reads) and ``TrainSettings`` (how long,
how often, where to). Components (model, objective, optimizer, scheduler) are passed as objects."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import attrs
from torch import Tensor

from dind.training.config import Precision, TrainConfig, VarianceConfig, _one_of
from dind.validation import positive_int, positive_number

_positive_int_or_none = positive_int.or_none()


@runtime_checkable
class TrainBatches(Protocol):
    """The training stream: ``next(n)`` -> (n, length) long tokens; its position is a state dict
    (saved in every checkpoint, so a resumed run reads the rows it would have read)."""

    def next(self, batch_size: int) -> Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _batches(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, TrainBatches):
        raise TypeError(
            f"{attribute.name} must have next(batch_size), state_dict() and load_state_dict() "
            f"(got {type(value).__name__})"
        )


@attrs.frozen
class TrainingData:
    """``train``: the training stream (``dind.data.ChunkBatches``); ``validation``: held-out chunks
    indexed by a tensor of indices (``dind.data.TokenChunks``), or None when nothing is evaluated;
    ``length``: tokens per row."""

    train: TrainBatches = attrs.field(validator=_batches)
    validation: Any
    length: int = attrs.field(validator=positive_int)

    @classmethod
    def from_corpus(
        cls,
        source: Any,
        tokenizer: Any,
        *,
        length: int,
        cache_dir: str | os.PathLike[str],
        validation_fraction: float = 0.05,
        split_seed: int = 0,
        chunk_format: str = "bos",
        seed: int = 0,
        shuffle: bool = True,
    ) -> TrainingData:
        """Tokenise ``source`` (a ``dind.data`` corpus) once into ``cache_dir`` (found, not rebuilt,
        later), cut both splits into chunks of ``length``, read the training split in an order
        seeded by ``seed``."""
        from dind.data import ChunkBatches, TokenChunks, build_token_cache

        cache = build_token_cache(
            source, tokenizer, cache_dir, validation_fraction=validation_fraction, split_seed=split_seed
        )
        train = TokenChunks.open(cache, "train", length, chunk_format)
        validation = TokenChunks.open(cache, "validation", length, chunk_format)
        return cls(ChunkBatches(train, seed=seed, shuffle=shuffle), validation, length)


@attrs.frozen
class TrainSettings:
    """Every field as in ``TrainConfig`` (same names, same meaning, same defaults)."""

    steps: int = attrs.field(default=1000, validator=positive_int)
    batch_size: int = attrs.field(default=32, validator=positive_int)
    micro_batch_size: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    seed: int = 0
    ema_decay: float | None = attrs.field(
        default=0.9999,
        validator=attrs.validators.optional([attrs.validators.ge(0.0), attrs.validators.lt(1.0)]),
    )
    grad_clip: float | None = attrs.field(default=1.0, validator=positive_number.or_none())
    precision: Precision = attrs.field(default="auto", validator=_one_of("auto", "fp32", "bf16"))
    activation_checkpointing: bool = False
    compile: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    out_dir: str = attrs.field(default="runs/train", converter=str)
    log_every: int = attrs.field(default=10, validator=positive_int)
    eval_every: int | None = attrs.field(default=500, validator=_positive_int_or_none)
    eval_batches: int = attrs.field(default=16, validator=positive_int)
    eval_at_start: bool = True
    variance: VarianceConfig = attrs.field(factory=VarianceConfig)
    save_every: int | None = attrs.field(default=1000, validator=_positive_int_or_none)
    keep_every: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    progress: bool = True

    @classmethod
    def from_config(cls, config: TrainConfig) -> TrainSettings:
        names = {field.name for field in attrs.fields(cls)} - {"grad_clip"}
        return cls(grad_clip=config.optim.grad_clip, **{name: getattr(config, name) for name in names})

    def batch_geometry(self, world_size: int) -> tuple[int, int]:
        """(micro-batch rows per process, accumulation steps) for the global ``batch_size``."""
        micro = self.micro_batch_size or self.batch_size // world_size
        if micro < 1 or self.batch_size % (micro * world_size):
            raise ValueError(
                "batch_size must be a multiple of micro_batch_size * world size "
                f"(got {self.batch_size}, {self.micro_batch_size}, world size {world_size})"
            )
        return micro, self.batch_size // (micro * world_size)
