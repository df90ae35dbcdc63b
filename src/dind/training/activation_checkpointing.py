"""Activation checkpointing over the DiT's transformer blocks, applied from outside the model.

Each block's ``forward`` is replaced, on the instance, by a non-reentrant
``torch.utils.checkpoint`` call of the original: the module tree and the state-dict keys stay
unchanged (checkpoints load and save as before), and dropout masks are replayed exactly in the
recomputation (the RNG state is preserved).
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn
from torch.utils.checkpoint import checkpoint

from dind.training.distributed import transformer_blocks


def _checkpointed(original: Any, *args: Any, **kwargs: Any) -> Any:
    return checkpoint(original, *args, use_reentrant=False, **kwargs)


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Checkpoint every transformer block of ``model``; returns how many were wrapped."""
    blocks = transformer_blocks(model)
    for block in blocks:
        if "forward" not in vars(block):  # idempotent: wrap each block once
            block.forward = functools.partial(_checkpointed, block.forward)
    return len(blocks)


def disable_activation_checkpointing(model: nn.Module) -> None:
    for block in transformer_blocks(model):
        vars(block).pop("forward", None)
