"""The exact KV cache for block-by-block sampling.

Keys and values of finished (clean) blocks, per layer, preallocated once for the whole generation
as (batch, heads, length, head_dim). ``filled`` counts the cached positions [0, filled). A block
being sampled writes its own keys/values into the free region [filled, filled + width) as scratch
(its queries attend to [0, filled + width)) without advancing ``filled``; appending the finished
block writes the same region and advances ``filled``. So no step ever allocates or concatenates.

The cached keys of a position depend on the block size it was appended with (a clean position sees
its own block bidirectionally), so a stage with a new block size starts with ``reset()``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Per-layer key/value buffers (batch, heads, length, head_dim) and the filled length."""

    def __init__(
        self,
        *,
        layers: int,
        batch_size: int,
        heads: int,
        length: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str | None = None,
    ):
        for name, value in (
            ("layers", layers),
            ("batch_size", batch_size),
            ("heads", heads),
            ("length", length),
            ("head_dim", head_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer (got {value!r})")
        shape = (batch_size, heads, length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.batch_size = batch_size
        self.length = length
        self.filled = 0

    def __repr__(self) -> str:
        return (
            f"KVCache(layers={len(self.keys)}, shape={tuple(self.keys[0].shape)}, "
            f"dtype={self.keys[0].dtype}, filled={self.filled})"
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.keys[0].dtype

    def reset(self) -> None:
        """Forget every cached position (a new stage; the block size may change)."""
        self.filled = 0

    def check_block(self, start: int, width: int, batch: int) -> None:
        """Raise unless a block of ``width`` at ``start`` continues the cache within its bounds."""
        if start != self.filled:
            raise ValueError(
                f"start must equal the cached length: blocks are appended left to right without gaps "
                f"(got start {start}, cached {self.filled})"
            )
        if width < 1 or start + width > self.length:
            raise ValueError(
                f"block [start, start + width) must be non-empty and fit the cache length "
                f"(got [{start}, {start + width}), cache length {self.length})"
            )
        if batch != self.batch_size:
            raise ValueError(f"block batch must equal the cache batch_size (got {batch}, {self.batch_size})")

    def write(self, layer: int, start: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Store a block's (batch, heads, width, head_dim) keys/values at [start, start + width) and
        return the keys/values of [0, start + width) in the block's dtype. Does not move ``filled``."""
        end = start + key.shape[2]
        self.keys[layer][:, :, start:end] = key
        self.values[layer][:, :, start:end] = value
        return self.keys[layer][:, :, :end].to(key.dtype), self.values[layer][:, :, :end].to(value.dtype)

    def advance(self, width: int) -> None:
        """Mark the block just written at [filled, filled + width) as cached."""
        if self.filled + width > self.length:
            raise ValueError(f"filled + width must be <= length (got {self.filled} + {width}, {self.length})")
        self.filled += width
