"""Attention over a static-shape KV cache, for ``dind.models.static_step``: SDPA over exactly the
filled prefix as an op opaque to ``torch.compile`` (the graph around it keeps static shapes), the
masks of the full-length form (CUDA graphs) and of the fused append, and the cache write."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def attend_prefix(query: Tensor, keys: Tensor, values: Tensor, end: Tensor) -> Tensor:
    """SDPA of ``query`` (batch, heads, width, head_dim) over keys/values [0, end) of the cache
    buffers (batch, heads, cache length, head_dim); ``end`` a 1-element long tensor."""
    length = int(end)
    keys, values = keys.narrow(2, 0, length), values.narrow(2, 0, length)
    if keys.dtype != query.dtype:
        keys, values = keys.to(query.dtype), values.to(query.dtype)
    return F.scaled_dot_product_attention(query, keys, values)


# the same as an op opaque to torch.compile, so the graph around it keeps static shapes (a plain
# dispatcher op: torch.library.custom_op's wrapper costs ~0.1 ms a call, a sixth of the step).
# Defined once per process (a reloaded module re-points the implementation, nothing else).
if not hasattr(torch.ops.dind, "prefix_attention"):
    torch.library.define(
        "dind::prefix_attention", "(Tensor query, Tensor keys, Tensor values, Tensor end) -> Tensor"
    )

    @torch.library.register_fake("dind::prefix_attention")
    def _(query: Tensor, keys: Tensor, values: Tensor, end: Tensor) -> Tensor:
        return torch.empty_like(query)


torch.library.impl("dind::prefix_attention", "CompositeExplicitAutograd", attend_prefix)
prefix_attention = torch.ops.dind.prefix_attention


def fused_visible(first: Tensor, width: int):
    """Query q of [finished block ; noisy block] (aligned at ``first``) sees the keys before the end
    of its own block: the finished block not the noisy one, the noisy block both."""

    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return key < first + (query // width + 1) * width

    return mask_mod


def visible_below(limit: Tensor):
    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return key < limit

    return mask_mod


def write_positions(keys: Tensor, values: Tensor, positions: Tensor, key: Tensor, value: Tensor) -> None:
    keys.index_copy_(2, positions, key.to(keys.dtype))
    values.index_copy_(2, positions, value.to(values.dtype))
