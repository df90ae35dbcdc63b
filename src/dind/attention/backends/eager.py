"""The reference backend: explicit matmuls and an fp32 softmax."""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from dind.attention.backends.base import ATTENTION_BACKENDS, check_shapes
from dind.attention.masks import AttentionMask


@ATTENTION_BACKENDS.register("eager")
@attrs.frozen
class EagerAttention:
    """softmax(q k^T / sqrt(d)) v with the scores and softmax in fp32; readable, slow, exact."""

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> Tensor:
        check_shapes(query, key, value, mask)
        scale = 1.0 / math.sqrt(query.shape[-1])
        scores = torch.einsum("bhqd,bhkd->bhqk", query.float(), key.float()) * scale
        if mask is not None:
            scores = scores.masked_fill(~mask.dense(query.device), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out = torch.einsum("bhqk,bhkd->bhqd", weights, value.float())
        return out.to(query.dtype)
