"""Parameter initialisation from an explicit generator.

"bd3lm": BD3-LM's scheme: PyTorch's default Linear init (uniform +-1/sqrt(fan_in) for weights and
biases; the embedding the same way with fan_in = hidden), LayerNorm weights one, and the adaLN
modulations and the output linear zero, so a fresh model outputs uniform logits and every block
starts as the identity. "random": the same but nothing zero, for tests and demos that need a model
whose logits depend on its input.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from dind.models.layers import EmbeddingLayer, LayerNorm
from dind.models.rotary import Rotary

Init = Literal["bd3lm", "random"]
INITS = ("bd3lm", "random")


def _uniform(parameter: Tensor, bound: float, generator: torch.Generator | None) -> None:
    # drawn on the CPU so that one CPU generator gives the same weights on every device
    values = torch.empty(parameter.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
    parameter.copy_(values)


@torch.no_grad()
def initialize(model: nn.Module, *, generator: torch.Generator | None = None, init: Init = "bd3lm") -> None:
    """Initialise every parameter and buffer of a DiT in place (module order, so deterministic)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} (got {init!r})")
    zero_names = ("adaLN_modulation", "output_layer.linear") if init == "bd3lm" else ()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            zero = any(part in name for part in zero_names)
            for parameter in (module.weight, module.bias):
                if parameter is None:
                    continue
                if zero:
                    parameter.zero_()
                else:
                    _uniform(parameter, bound, generator)
        elif isinstance(module, EmbeddingLayer):
            _uniform(module.embedding, 1.0 / math.sqrt(module.embedding.shape[1]), generator)
        elif isinstance(module, LayerNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, Rotary):
            module.reset_parameters()
    for name in ("sampling_eps_min", "sampling_eps_max"):
        if hasattr(model, name):
            getattr(model, name).fill_(1e-3 if name.endswith("min") else 1.0)
