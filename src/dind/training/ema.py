"""Exponential moving average of the weights, with BD3-LM's warm-up decay.

After the n-th update (n = 1, 2, ...) the decay is min(decay, (1 + n) / (10 + n)), so early
averages follow the weights closely. The EMA weights are what a checkpoint's model.safetensors
holds (like BD3-LM's released checkpoints); the raw weights live in the trainer state.
Works on plain tensors and on FSDP2's sharded DTensors (each rank averages its own shard).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from dind.training.distributed import full_tensor, like


class ExponentialMovingAverage:
    def __init__(self, model: nn.Module, decay: float = 0.9999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1) (got {decay})")
        self.decay = decay
        self.updates = 0
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.names = [name for name, _ in named]
        self.shadow = [p.detach().clone() for _, p in named]

    def _parameters(self, model: nn.Module) -> list[Tensor]:
        lookup = dict(model.named_parameters())
        missing = [name for name in self.names if name not in lookup]
        if missing:
            raise ValueError(f"model lacks EMA parameters {missing[:3]} (got {len(missing)} missing)")
        return [lookup[name] for name in self.names]

    def current_decay(self) -> float:
        n = self.updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.current_decay()
        parameters = [p.detach() for p in self._parameters(model)]
        torch._foreach_lerp_(self.shadow, parameters, weight)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for parameter, average in zip(self._parameters(model), self.shadow, strict=False):
            parameter.copy_(average)

    @contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[None]:
        """Inside the block the model holds the EMA weights; the raw weights come back after."""
        raw = [p.detach().clone() for p in self._parameters(model)]
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, value in zip(self._parameters(model), raw, strict=False):
                    parameter.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """Whole (unsharded) tensors; a collective under FSDP, so call it on every rank."""
        shadow = {
            name: full_tensor(average).detach().to("cpu", copy=True)
            for name, average in zip(self.names, self.shadow, strict=False)
        }
        return {"decay": self.decay, "updates": self.updates, "shadow": shadow}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if sorted(state["shadow"]) != sorted(self.names):
            raise ValueError("EMA state does not match the model's parameter names")
        self.decay, self.updates = state["decay"], state["updates"]
        for name, average in zip(self.names, self.shadow, strict=False):
            average.copy_(like(state["shadow"][name], average))
