"""Block-size distributions P_B for mixed-scale training (PAPER Eq. 7-8).

Draw one size per batch (``sample(1)``) or one per sample (``sample(batch)``). The text form used
by configs and the CLI: "fixed:4", "bimodal:4,1024,0.1", "uniform:4,16,64,256,1024",
"categorical:4=0.7,64=0.2,1024=0.1". ``draw_categorical`` is the draw they all share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.registry import Registry
from dind.textform import format_number
from dind.validation import closed_unit_interval, positive_int


@runtime_checkable
class BlockSizeDistribution(Protocol):
    """A categorical law over positive block sizes.

    Invariant: ``sample(n)`` is an (n,) long tensor whose entries lie in ``support()`` and occur
    with ``probabilities()`` (same order, summing to 1)."""

    def support(self) -> tuple[int, ...]: ...

    def probabilities(self) -> tuple[float, ...]: ...

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor: ...


BLOCK_SIZE_DISTRIBUTIONS: Registry[BlockSizeDistribution] = Registry(
    "block_size_distributions", entry_point_group="dind.block_size_distributions"
)


def draw_categorical(
    sizes: Sequence[int],
    probabilities: Sequence[float],
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n`` independent draws from the categorical law putting ``probabilities[i]`` on
    ``sizes[i]``: an (n,) long tensor. What every shipped distribution's ``sample`` is, so a new
    ``BlockSizeDistribution`` can write ``sample`` as
    ``draw_categorical(self.support(), self.probabilities(), n, generator=generator)``.

    The draw is one ``torch.multinomial`` over float64 probabilities (with replacement), so the
    same generator state gives the same sizes on every machine and version of this function."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (got {n!r})")
    if len(sizes) != len(probabilities) or not sizes:
        raise ValueError(
            "sizes and probabilities must be non-empty and of one length "
            f"(got {len(sizes)} sizes, {len(probabilities)} probabilities)"
        )
    probs = torch.tensor(tuple(probabilities), dtype=torch.float64)
    if not bool(torch.isfinite(probs).all()) or bool((probs < 0).any()) or not float(probs.sum()) > 0:
        raise ValueError(f"probabilities must be finite, >= 0 and not all 0 (got {tuple(probabilities)})")
    index = torch.multinomial(probs, n, replacement=True, generator=generator)
    return torch.tensor(tuple(sizes), dtype=torch.long)[index]


def check_divides(dist: BlockSizeDistribution, length: int) -> None:
    bad = [size for size in dist.support() if size > length or length % size]
    if bad:
        raise ValueError(
            f"every block size must divide the sequence length (got sizes {bad}, length {length})"
        )


def _sizes(instance: object, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")
    for size in value:
        positive_int(instance, attribute, size)
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name} must not repeat a size (got {value})")


@BLOCK_SIZE_DISTRIBUTIONS.register("fixed")
@attrs.frozen
class FixedBlockSize:
    size: int = attrs.field(validator=positive_int)

    @classmethod
    def from_args(cls, values: list[str]) -> FixedBlockSize:
        (size,) = values
        return cls(int(size))

    def __str__(self) -> str:
        return f"fixed:{self.size}"

    def support(self) -> tuple[int, ...]:
        return (self.size,)

    def probabilities(self) -> tuple[float, ...]:
        return (1.0,)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return draw_categorical(self.support(), self.probabilities(), n, generator=generator)


@BLOCK_SIZE_DISTRIBUTIONS.register("bimodal")
@attrs.frozen
class BimodalBlockSize:
    """B_draft with probability 1 - lambda, B_global with probability lambda (PAPER: 4, 1024, 0.1)."""

    draft: int = attrs.field(validator=positive_int)
    global_size: int = attrs.field(validator=positive_int)
    global_probability: float = attrs.field(default=0.1, converter=float, validator=closed_unit_interval)

    @classmethod
    def from_args(cls, values: list[str]) -> BimodalBlockSize:
        draft, global_size, *rest = values
        return cls(int(draft), int(global_size), *(float(v) for v in rest))

    def __str__(self) -> str:
        return f"bimodal:{self.draft},{self.global_size},{format_number(self.global_probability)}"

    @global_size.validator
    def _larger(self, attribute: attrs.Attribute, value: int) -> None:
        if value <= self.draft:
            raise ValueError(f"global_size must be > draft (got global_size={value}, draft={self.draft})")

    def support(self) -> tuple[int, ...]:
        return (self.draft, self.global_size)

    def probabilities(self) -> tuple[float, ...]:
        return (1.0 - self.global_probability, self.global_probability)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return draw_categorical(self.support(), self.probabilities(), n, generator=generator)


@BLOCK_SIZE_DISTRIBUTIONS.register("uniform")
@attrs.frozen
class UniformBlockSize:
    """Uniform over a set, e.g. the powers of two {4, 16, 64, 256, 1024} of the paper's ablation."""

    sizes: tuple[int, ...] = attrs.field(converter=tuple, validator=_sizes)

    @classmethod
    def from_args(cls, values: list[str]) -> UniformBlockSize:
        return cls(tuple(int(v) for v in values))

    def __str__(self) -> str:
        return "uniform:" + ",".join(map(str, self.sizes))

    def support(self) -> tuple[int, ...]:
        return self.sizes

    def probabilities(self) -> tuple[float, ...]:
        return tuple(1.0 / len(self.sizes) for _ in self.sizes)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return draw_categorical(self.support(), self.probabilities(), n, generator=generator)


@BLOCK_SIZE_DISTRIBUTIONS.register("categorical")
@attrs.frozen
class CategoricalBlockSize:
    sizes: tuple[int, ...] = attrs.field(converter=tuple, validator=_sizes)
    weights: tuple[float, ...] = attrs.field(converter=lambda v: tuple(float(x) for x in v))

    @weights.validator
    def _check(self, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
        if len(value) != len(self.sizes):
            raise ValueError(f"weights must have one entry per size (got {len(value)} for {len(self.sizes)})")
        if any(not w > 0 for w in value):
            raise ValueError(f"weights must be > 0 (got {value})")
        if not math.isclose(sum(value), 1.0, abs_tol=1e-6):
            raise ValueError(f"weights must sum to 1 (got sum {sum(value)})")

    @classmethod
    def from_args(cls, values: list[str]) -> CategoricalBlockSize:
        pairs = [value.split("=") for value in values]
        return cls(tuple(int(size) for size, _ in pairs), tuple(float(weight) for _, weight in pairs))

    def __str__(self) -> str:
        return "categorical:" + ",".join(
            f"{s}={format_number(w)}" for s, w in zip(self.sizes, self.weights, strict=True)
        )

    def support(self) -> tuple[int, ...]:
        return self.sizes

    def probabilities(self) -> tuple[float, ...]:
        return self.weights

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return draw_categorical(self.support(), self.probabilities(), n, generator=generator)


def parse_block_sizes(text: str) -> BlockSizeDistribution:
    """ "fixed:4" | "bimodal:4,1024,0.1" | "uniform:4,16,64" | "categorical:4=0.9,1024=0.1";
    the inverse of ``str(distribution)``."""
    name, _, args = text.partition(":")
    factory = BLOCK_SIZE_DISTRIBUTIONS.get(name.strip())
    values = [item.strip() for item in args.split(",") if item.strip()]
    try:
        return factory.from_args(values)
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"cannot parse block-size distribution {text!r}: {error}") from None
