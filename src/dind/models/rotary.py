"""Rotary position embedding, rotate-half (non-interleaved) layout, base 10000 (REFERENCE.md).

A head vector is split into halves (x1, x2); position p rotates pair (x1[i], x2[i]) by the angle
p * inv_freq[i]: out = x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

BASE = 10000.0


def inverse_frequencies(head_dim: int, *, device: torch.device | str | None = None) -> Tensor:
    """(head_dim / 2,) fp32: BASE ** (-2i / head_dim)."""
    return 1.0 / BASE ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)


def rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (..., length, head_dim); cos, sin (length, head_dim), cast to x's dtype first as BD3-LM
    does (so bf16 runs round the same way; a no-op when the caller cast them once per forward)."""
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


class Rotary(nn.Module):
    """Holds ``inv_freq`` as a persistent buffer (it is part of BD3-LM's checkpoint)."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.head_dim = head_dim
        self.register_buffer("inv_freq", inverse_frequencies(head_dim), persistent=True)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.inv_freq.copy_(inverse_frequencies(self.head_dim, device=self.inv_freq.device))

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """(length,) long positions -> cos, sin, each (length, head_dim) fp32; any shape of
        positions gives (*positions.shape, head_dim) (per-row positions: (batch, length))."""
        angles = positions.to(torch.float32)[..., None] * self.inv_freq.float()
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()
