"""Block-diffusion attention: mask functions, interchangeable backends, and the exact KV cache."""

from dind.attention.backends import ATTENTION_BACKENDS, AttentionBackend
from dind.attention.cache import KVCache
from dind.attention.masks import (
    AttentionMask,
    MaskMod,
    block_causal_mask,
    block_causal_mod,
    check_block_sizes,
    training_mask,
    training_mod,
)

__all__ = [
    "ATTENTION_BACKENDS",
    "AttentionBackend",
    "AttentionMask",
    "KVCache",
    "MaskMod",
    "block_causal_mask",
    "block_causal_mod",
    "check_block_sizes",
    "training_mask",
    "training_mod",
]
