"""PyTorch's fused scaled_dot_product_attention, with the dense bool mask when there is one."""

from __future__ import annotations

import attrs
import torch.nn.functional as F
from torch import Tensor

from dind.attention.backends.base import ATTENTION_BACKENDS, check_shapes
from dind.attention.masks import AttentionMask


@ATTENTION_BACKENDS.register("sdpa")
@attrs.frozen
class SdpaAttention:
    """``F.scaled_dot_product_attention``: flash/memory-efficient kernels when unmasked, a masked
    kernel with the dense (batch or 1, 1, query, key) bool mask otherwise."""

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> Tensor:
        check_shapes(query, key, value, mask)
        dense = None if mask is None else mask.dense(query.device)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=dense)
