"""flash-attn (GPU only): for calls without a mask, i.e. full bidirectional attention and cached
block queries (the block attends to every cached position and to itself). Masked calls raise."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.attention.backends.base import ATTENTION_BACKENDS, check_shapes
from dind.attention.masks import AttentionMask


def flash_attn_func():
    """The one import guard for the optional flash-attn package."""
    try:
        from flash_attn import flash_attn_func as function
    except ImportError as error:  # also raised by flash-attn builds that do not match torch
        raise ImportError(
            "the 'flash' attention backend needs the flash-attn package (pip install 'dind[gpu]') "
            f"and a CUDA device; use 'sdpa' or 'flex' otherwise ({error})"
        ) from error
    return function


@ATTENTION_BACKENDS.register("flash")
@attrs.frozen
class FlashAttention:
    """flash-attn 2 on fp16/bf16 CUDA tensors, mask-free calls only (no silent fallback: a masked
    call raises, so a run never quietly measures another kernel)."""

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> Tensor:
        check_shapes(query, key, value, mask)
        if mask is not None:
            raise ValueError(
                f"the 'flash' backend supports only calls without a mask (got {mask!r}); use 'sdpa' or "
                "'flex' for block-causal and training masks"
            )
        if not query.is_cuda or query.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(
                "the 'flash' backend needs CUDA fp16/bf16 tensors, e.g. under torch.autocast "
                f"(got device {query.device}, dtype {query.dtype})"
            )
        function = flash_attn_func()
        # flash-attn wants (batch, length, heads, head_dim)
        out = function(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
        return out.transpose(1, 2)
