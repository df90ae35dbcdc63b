"""What the Trainer reads: ``TrainingData`` (a training stream, validation chunks, a length), and
the config's ``data`` section (``DataConfig``), which builds it from a corpus and a tokenizer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
from torch import Tensor, nn

from dind.data import CORPORA, TOKENIZERS, ChunkBatches, TokenChunks, Tokenizer, build_token_cache
from dind.data.packing import ChunkFormat
from dind.training.components import ComponentSpec, build_component, spec_field
from dind.training.distributed import DistributedContext
from dind.training.fields import one_of, positive_int_or_null
from dind.validation import positive_int

DEFAULT_CACHE = Path("~/.cache/dind/tokens")


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


@attrs.frozen(eq=False)  # holds token streams and chunk arrays
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
        cache = build_token_cache(
            source, tokenizer, cache_dir, validation_fraction=validation_fraction, split_seed=split_seed
        )
        train = TokenChunks.open(cache, "train", length, chunk_format)
        validation = TokenChunks.open(cache, "validation", length, chunk_format)
        return cls(ChunkBatches(train, seed=seed, shuffle=shuffle), validation, length)


@attrs.frozen
class DataConfig:
    """``corpus``: a CORPORA spec (``{name: text, paths: [data/shakespeare]}``); ``tokenizer``: a
    TOKENIZERS spec. ``length`` null = the model's ``model_length``. ``cache_dir`` null =
    ~/.cache/dind/tokens."""

    corpus: ComponentSpec = spec_field(CORPORA, key="data.corpus", default="text")
    tokenizer: ComponentSpec = spec_field(TOKENIZERS, key="data.tokenizer", default="gpt2")
    length: int | None = attrs.field(default=None, validator=positive_int_or_null)
    chunk_format: ChunkFormat = attrs.field(default="bos", validator=one_of("plain", "bos", "bos_eos"))
    validation_fraction: float = attrs.field(
        default=0.05, converter=float, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )
    split_seed: int = 0
    cache_dir: str | None = None
    shuffle: bool = True

    def build_tokenizer(self, model: nn.Module) -> Tokenizer:
        """The tokenizer, checked against ``model``'s vocabulary and MASK id."""
        tokenizer = build_component(TOKENIZERS, self.tokenizer, key="data.tokenizer")
        if tokenizer.model_vocab_size != model.vocab_size or tokenizer.mask_id != model.mask_id:
            raise ValueError(
                f"tokenizer {self.tokenizer.name!r} needs a model vocabulary of {tokenizer.model_vocab_size} "
                f"with MASK {tokenizer.mask_id} (got vocab_size={model.vocab_size}, mask_id={model.mask_id})"
            )
        return tokenizer

    def sequence_length(self, model: nn.Module) -> int:
        model_length = int(model.config.model_length)
        length = model_length if self.length is None else self.length
        if length > model_length:
            raise ValueError(
                f"data.length must be <= the model's model_length (got {length}, {model_length})"
            )
        return length

    def build(
        self, tokenizer: Tokenizer, length: int, context: DistributedContext, seed: int
    ) -> TrainingData:
        """Training batches in seeded order and the validation chunks. The token cache is built
        once, by the main rank; the others wait for it."""
        source = build_component(CORPORA, self.corpus, key="data.corpus")
        cache_dir = Path(self.cache_dir).expanduser() if self.cache_dir else DEFAULT_CACHE.expanduser()
        arguments: dict[str, Any] = {
            "length": length,
            "cache_dir": cache_dir,
            "validation_fraction": self.validation_fraction,
            "split_seed": self.split_seed,
            "chunk_format": self.chunk_format,
            "seed": seed,
            "shuffle": self.shuffle,
        }
        if context.is_main:
            TrainingData.from_corpus(source, tokenizer, **arguments)  # builds the cache
        context.barrier()
        return TrainingData.from_corpus(source, tokenizer, **arguments)  # found, not rebuilt
