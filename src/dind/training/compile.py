"""A compiled training forward: ``torch.compile`` of each transformer block and the output layer.

What is compiled is the dense tensor work (adaLN modulation, projections, rotary, MLP, the output
layer), forwards and backwards (AOT autograd). What stays eager, on purpose:
- the attention call: the backend is wrapped so the compiler calls it as an opaque function, so
  the mask objects (cached per block size, ``dind.attention.mask_cache``) are never traced and
  never guarded on; a new batch of block sizes does not recompile;
- the choice between the global and the block-diffusion forward (a data-dependent branch) and the
  NELBO's gather of masked positions (a data-dependent shape);
- the optimizer step (fused AdamW, ``optim.implementation``), so resume stays exact.

Shapes: the first call compiles for its shapes; a second shape (a different split of global and
block rows) recompiles once with a dynamic batch axis, after which no batch size recompiles.
Compilation takes minutes on a small CPU (about 90 s for the micro model on 2 loaded cores).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dind.training.distributed import transformer_blocks


@torch.compiler.disable
def _attend(backend: Any, query: Tensor, key: Tensor, value: Tensor, mask: Any) -> Tensor:
    return backend(query, key, value, mask)


class OpaqueAttention:
    """An attention backend the compiler calls without tracing into (same results as ``inner``)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: Any) -> Tensor:
        return _attend(self.inner, query, key, value, mask)

    def __repr__(self) -> str:
        return f"OpaqueAttention({self.inner!r})"


def compile_model(model: nn.Module, *, backend: str = "inductor") -> int:
    """Compile ``model``'s transformer blocks and output layer in place (the module tree and the
    state-dict keys are unchanged); returns how many modules were compiled. ``backend``: a
    ``torch.compile`` backend ("inductor"; "eager" traces without generating code, for tests)."""
    attention = getattr(model, "attention", None)
    if attention is not None and not isinstance(attention, OpaqueAttention):
        if hasattr(model, "set_attention_backend"):
            model.set_attention_backend(OpaqueAttention(attention))  # keeps config.attn_backend
        else:
            model.attention = OpaqueAttention(attention)
    modules = list(transformer_blocks(model))
    output = getattr(getattr(model, "backbone", None), "output_layer", None)
    if isinstance(output, nn.Module):
        modules.append(output)
    for module in modules:
        module.compile(backend=backend, dynamic=None)
    return len(modules)
