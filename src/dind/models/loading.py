"""One entry point for command-line model specs: a preset name or a checkpoint (directory/hub id)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dind.models.checkpoint import from_pretrained
from dind.models.dit import DiT
from dind.models.presets import PRESETS, build


def load_model(spec: str | os.PathLike[str], **kwargs: Any) -> DiT:
    """A local checkpoint directory wins over a preset of the same name; a preset name builds a
    freshly initialised model (``kwargs`` go to ``build``); anything else goes to ``from_pretrained``
    (``kwargs``: device, dtype, config overrides)."""
    if not Path(spec).expanduser().is_dir() and str(spec) in PRESETS:
        return build(str(spec), **kwargs)
    return from_pretrained(spec, **kwargs)
