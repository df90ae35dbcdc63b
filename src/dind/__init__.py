"""dind: Diffusion in Diffusion for block discrete diffusion language models.

The top-level names load lazily (``import dind`` imports neither torch nor the subpackages):

- ``dind.load(path_or_preset, device=..., dtype=...)``: a checkpoint directory, preset or hub id
- ``dind.generate(model, plan, length=...)``: multi-stage (DiD) sampling
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
}

__all__ = ["StagePlan", "Stage", "__version__", "generate", "load"]

if TYPE_CHECKING:
    from dind.models.loading import load
    from dind.sampling.multistage import generate
    from dind.sampling.plan import Stage, StagePlan


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'dind' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
