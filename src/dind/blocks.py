"""Block partitioners: which positions of a length-L sequence form each diffusion block.

The invariant every partitioner keeps (tests/test_blocks.py checks it for all registered ones):
the spans tile 0..length exactly, in order, and none is empty.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

from dind.registry import Registry
from dind.validation import positive_int

Span = tuple[int, int]


@runtime_checkable
class BlockPartitioner(Protocol):
    """Maps a sequence length (and a frozen prompt length) to half-open block spans [start, end)."""

    def spans(self, length: int, *, prompt_length: int = 0) -> tuple[Span, ...]: ...


PARTITIONERS: Registry[BlockPartitioner] = Registry("partitioners", entry_point_group="dind.partitioners")


def block_ids(partitioner: BlockPartitioner, length: int, *, prompt_length: int = 0) -> Tensor:
    """(length,) long tensor: the index of the block each position belongs to."""
    spans = partitioner.spans(length, prompt_length=prompt_length)
    sizes = torch.tensor([end - start for start, end in spans])
    return torch.repeat_interleave(torch.arange(len(spans)), sizes)


@PARTITIONERS.register("fixed")
@attrs.frozen
class FixedPartitioner:
    """Blocks of ``block_size`` positions.

    alignment:
      "absolute": blocks start at multiples of block_size, as in training; prompt positions are
                  frozen positions inside the first blocks (a block may be partly prompt).
      "prompt":   the prompt is one span [0, prompt_length), then blocks of block_size follow it.
    ragged (when block_size does not divide the length left to tile):
      "error":     raise ValueError (the default: never adjust silently).
      "short_last": the last block is shorter (length mod block_size positions).
    """

    block_size: int = attrs.field(validator=positive_int)
    alignment: Literal["absolute", "prompt"] = attrs.field(
        default="absolute", validator=attrs.validators.in_(("absolute", "prompt"))
    )
    ragged: Literal["error", "short_last"] = attrs.field(
        default="error", validator=attrs.validators.in_(("error", "short_last"))
    )

    def spans(self, length: int, *, prompt_length: int = 0) -> tuple[Span, ...]:
        if length < 1:
            raise ValueError(f"length must be >= 1 (got {length})")
        if not 0 <= prompt_length <= length:
            raise ValueError(f"prompt_length must be in [0, length] (got {prompt_length}, length {length})")
        start = prompt_length if self.alignment == "prompt" else 0
        rest = length - start
        if rest % self.block_size and self.ragged == "error":
            raise ValueError(
                f"block_size must divide the length to tile (got block_size={self.block_size}, "
                f"length to tile={rest}); pass ragged='short_last' to allow a shorter last block"
            )
        head: tuple[Span, ...] = ((0, start),) if start > 0 else ()
        body = tuple((s, min(s + self.block_size, length)) for s in range(start, length, self.block_size))
        return head + body
