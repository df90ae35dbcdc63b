"""Decode steps: how the sampler runs a model (``DecodeStep``, ``dind.models.protocol``).

A decode step is an object the caller builds and passes to ``generate`` through
``GenerateOptions(step=...)``. All steps give the same samples (the static and compiled ones up to
float rounding: tests/models/test_static_step.py); they differ in speed only.

- ``DynamicStep`` (the default): the model's own exact KV cache, shapes growing block by block.
- ``UncachedStep``: no cache; every block is denoised by the uncached reference forward over the
  sequence up to the block's end (the path every cached step is tested against).
- ``StaticStep`` / ``CompiledStep`` (``dind.models.static_step``): fixed shapes, a preallocated
  cache, folded weights; compiled under ``torch.compile``.

``DECODE_STEPS`` names them for the CLI and config files ("dynamic", "uncached", "static",
"compiled"); library code passes the objects.
"""

from __future__ import annotations

import attrs

from dind.models.protocol import Denoiser
from dind.registry import Registry

DECODE_STEPS: Registry = Registry("decode_step", entry_point_group="dind.decode_steps")


@DECODE_STEPS.register("dynamic")
@attrs.frozen
class DynamicStep:
    """The model's exact KV cache with dynamic shapes (``Denoiser.cached_logits``)."""

    uses_cache: bool = attrs.field(default=True, init=False)

    def bind(self, model: Denoiser) -> Denoiser:
        return model


@DECODE_STEPS.register("uncached")
@attrs.frozen
class UncachedStep:
    """No KV cache: block [s, e) is denoised from ``logits(tokens[:, :e], block_size=B)[:, s:e]``."""

    uses_cache: bool = attrs.field(default=False, init=False)

    def bind(self, model: Denoiser) -> Denoiser:
        return model


def decode_step_name(step: object) -> str:
    """The ``DECODE_STEPS`` name of a step object's class (what samples files record), or the
    class name for an unregistered one."""
    for name in DECODE_STEPS.names():
        if DECODE_STEPS.get(name) is type(step):
            return name
    return type(step).__name__
