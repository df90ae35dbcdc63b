"""Flex attention: the mask function becomes a sparse BlockMask, so fully masked tiles are skipped.

Uncompiled, flex attention runs a reference implementation (it works on CPU, for tests); compiled
(``compile=True``) it generates a fused kernel, which is where its speed comes from. On CPU, flex
attention has no backward pass (PyTorch 2.13): use it there for inference only.
"""

from __future__ import annotations

import functools
import warnings

import attrs
import torch
from torch import Tensor
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from dind.attention.backends.base import ATTENTION_BACKENDS, check_shapes
from dind.attention.masks import AttentionMask


@functools.cache
def _compiled(function):  # compiled once per process, on first use
    return torch.compile(function, dynamic=False)


@ATTENTION_BACKENDS.register("flex")
@attrs.frozen
class FlexAttention:
    """``flex_attention`` with ``create_block_mask`` built once per mask (shared by all layers)."""

    compile: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> Tensor:
        check_shapes(query, key, value, mask)
        block_mask = None
        if mask is not None:
            build = _compiled(create_block_mask) if self.compile else create_block_mask
            block_mask = mask.flex_block_mask(("flex", query.device, self.compile), build, query.device)
        if self.compile:
            return _compiled(flex_attention)(query, key, value, block_mask=block_mask).to(query.dtype)
        with warnings.catch_warnings():  # the unfused path is what compile=False asks for
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            return flex_attention(query, key, value, block_mask=block_mask).to(query.dtype)
