"""Named model sizes, and ``build`` (preset name or config + overrides -> DiT)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import torch

from dind.errors import UserError
from dind.models.config import DiTConfig
from dind.models.dit import Backbone, DiT
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
    config = attrs.evolve(config, **overrides)
    check_memory(config, torch.device(device) if device is not None else torch.get_default_device())
    return DiT(config, generator=generator, init=init, device=device)


def check_memory(config: DiTConfig, device: torch.device) -> None:
    """Refuse, before allocating, a model whose fp32 weights alone exceed the memory ``device`` has
    free (counted on the meta device with one and two blocks: exact, and costs no memory)."""
    one, two = (_meta_parameters(attrs.evolve(config, n_blocks=n)) for n in (1, 2))
    need = (one + (two - one) * (config.n_blocks - 1)) * 4  # every block has the same size
    have = available_memory(device)
    if have is not None and need > have:
        raise UserError(
            f"this model (hidden_dim {config.hidden_dim}, n_blocks {config.n_blocks}, vocab_size "
            f"{config.vocab_size}) needs {_size(need)} for its fp32 weights alone, more than the "
            f"{_size(have)} free on {device}; choose smaller sizes"
        )


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def _meta_parameters(config: DiTConfig) -> int:
    with torch.device("meta"):
        return sum(parameter.numel() for parameter in Backbone(config).parameters())


def available_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CPU: MemAvailable of /proc/meminfo, else physical memory); None where
    unknown."""
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
