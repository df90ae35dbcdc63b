"""dind: Diffusion in Diffusion for block discrete diffusion language models.

The top-level names load lazily (``import dind`` imports neither torch nor the subpackages):

- ``dind.load(path_or_preset, device=..., dtype=...)``: a checkpoint directory, preset or hub id
- ``dind.generate(model, plan, length=..., options=dind.GenerateOptions(...))``: multi-stage (DiD)
  sampling; decode steps ``dind.DynamicStep()`` (default), ``UncachedStep``, ``StaticStep``,
  ``CompiledStep``; ``dind.truncate_at_eos(result, eos_id)``
- ``dind.StagePlan``: a stage plan (``StagePlan.parse("4 -> 64@0.25")``)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "load": "dind.models.loading",
    "generate": "dind.sampling.multistage",
    "StagePlan": "dind.sampling.plan",
    "Stage": "dind.sampling.plan",
    "GenerateOptions": "dind.sampling.options",
    "continue_plan": "dind.sampling.multistage",
    "truncate_at_eos": "dind.sampling.postprocess",
    "DynamicStep": "dind.models.steps",
    "UncachedStep": "dind.models.steps",
    "StaticStep": "dind.models.static_step",
    "CompiledStep": "dind.models.static_step",
}

__all__ = [
    "CompiledStep",
    "DynamicStep",
    "GenerateOptions",
    "Stage",
    "StagePlan",
    "StaticStep",
    "UncachedStep",
    "__version__",
    "continue_plan",
    "generate",
    "load",
    "truncate_at_eos",
]

if TYPE_CHECKING:  # the package root is the top layer: it may name every module
    from dind.models.loading import load
    from dind.models.static_step import CompiledStep, StaticStep
    from dind.models.steps import DynamicStep, UncachedStep
    from dind.sampling.multistage import continue_plan, generate
    from dind.sampling.options import GenerateOptions
    from dind.sampling.plan import Stage, StagePlan
    from dind.sampling.postprocess import truncate_at_eos


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'dind' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
