"""Attention backends behind one registry.

Every backend computes softmax(query @ key^T / sqrt(head_dim) + mask) @ value, with no dropout.
"eager" (matmul + fp32 softmax) is the reference all others are tested against; "sdpa" is
PyTorch's fused kernel; "flex" is flex attention (optionally compiled); "flash" is flash-attn,
only for calls without a mask (full bidirectional attention and cached block queries).
"""

from __future__ import annotations

# Registration happens on import of each backend module.
from dind.attention.backends import eager, flash, flex, sdpa  # noqa: E402,F401,I001
from dind.attention.backends.base import ATTENTION_BACKENDS, AttentionBackend, check_shapes

__all__ = ["ATTENTION_BACKENDS", "AttentionBackend", "check_shapes"]
