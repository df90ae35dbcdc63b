"""The config's ``model`` section: a fresh preset (``preset``, with DiTConfig overrides as its
options) or a BD3-LM-format checkpoint to fine-tune (``init``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from torch import nn

from dind.models.config import DiTConfig
from dind.models.loading import load
from dind.models.presets import PRESETS, build
from dind.training.components import ComponentSpec, spec_field


def _dit_fields(factory: Callable[..., Any]) -> list[str]:
    # a preset's options are overrides of the DiTConfig it returns, whatever the preset
    return [field.name for field in attrs.fields(DiTConfig)]


def _no_options_with_init(instance: ModelConfig, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and instance.preset.options:
        raise ValueError(
            "model.preset options cannot change a checkpoint's model: they must be empty when model.init "
            f"is set (got {dict(instance.preset.options)})"
        )


@attrs.frozen
class ModelConfig:
    """``preset``: a ``dind.models.PRESETS`` spec whose options override DiTConfig fields
    (``{name: tiny, model_length: 256, dropout: 0.0}``); ``init``: a BD3-LM-format checkpoint
    directory or hub id to start from (fine-tuning) instead of a fresh preset."""

    preset: ComponentSpec = spec_field(PRESETS, key="model.preset", default="tiny", accepted=_dit_fields)
    init: str | None = attrs.field(default=None, validator=_no_options_with_init)

    def build(self) -> nn.Module:
        """A fresh preset (weights from the global RNG), or the ``init`` checkpoint."""
        if self.init is None:
            return build(self.preset.name, **self.preset.options)
        if not Path(self.init).expanduser().exists() and self.init in PRESETS:
            raise ValueError(
                f"model.init must be a checkpoint directory or hub id (got the preset name {self.init!r}; "
                "set model.preset for a fresh model)"
            )
        try:
            return load(self.init)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"model.init: {error}") from None
