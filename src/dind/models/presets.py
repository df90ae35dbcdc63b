"""Named model sizes, and ``build`` (preset name or config + overrides -> DiT)."""

from __future__ import annotations

from typing import Any

import attrs
import torch

from dind.models.config import DiTConfig
from dind.models.dit import DiT
from dind.models.initialization import Init
from dind.registry import Registry

PRESETS: Registry[DiTConfig] = Registry("model_presets", entry_point_group="dind.model_presets")

# byte-level vocabulary: 256 bytes, EOS = 256, MASK = 257
BYTE_VOCAB = 258


@PRESETS.register("bd3lm-110m")
def bd3lm_110m() -> DiTConfig:
    """BD3-LM's OpenWebText backbone: 169,627,218 parameters ("110M" is its nominal label)."""
    return DiTConfig(
        vocab_size=50258, hidden_dim=768, n_blocks=12, n_heads=12, cond_dim=128, model_length=1024
    )


@PRESETS.register("tiny")
def tiny() -> DiTConfig:
    """A byte-level CPU model of ~5.5M parameters at length 1024."""
    return DiTConfig(
        vocab_size=BYTE_VOCAB, hidden_dim=256, n_blocks=6, n_heads=4, cond_dim=64, model_length=1024
    )


@PRESETS.register("micro")
def micro() -> DiTConfig:
    """The smallest useful model, for tests (~0.17M parameters, length 128)."""
    return DiTConfig(
        vocab_size=BYTE_VOCAB, hidden_dim=64, n_blocks=2, n_heads=2, cond_dim=32, model_length=128
    )


def build(
    preset_or_config: str | DiTConfig,
    /,
    *,
    generator: torch.Generator | None = None,
    init: Init = "bd3lm",
    device: torch.device | str | None = None,
    **overrides: Any,
) -> DiT:
    """A freshly initialised DiT from a preset name or a config; ``overrides`` replace config fields
    (e.g. ``build("tiny", dropout=0.0, attn_backend="eager")``)."""
    config = PRESETS.build(preset_or_config) if isinstance(preset_or_config, str) else preset_or_config
    if not isinstance(config, DiTConfig):
        raise TypeError(
            f"preset_or_config must be a preset name or a DiTConfig (got {type(config).__name__})"
        )
    fields = {field.name for field in attrs.fields(DiTConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"overrides must be DiTConfig fields (got {unknown}; fields: {sorted(fields)})")
    return DiT(attrs.evolve(config, **overrides), generator=generator, init=init, device=device)
