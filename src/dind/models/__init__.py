"""The BD3-LM-compatible DiT, its presets, and checkpoint I/O (``load`` is ``dind.load``)."""

from dind.models.checkpoint import CheckpointError, check_state_dict, save_pretrained
from dind.models.config import DiTConfig, read_config
from dind.models.dit import DiT
from dind.models.loading import from_pretrained, load, load_model
from dind.models.presets import PRESETS, build
from dind.models.protocol import DecodeStep, Denoiser
from dind.models.sources import HubUnavailableError
from dind.models.static_step import CompiledStep, StaticStep
from dind.models.steps import DECODE_STEPS, DynamicStep, UncachedStep

__all__ = [
    "DECODE_STEPS",
    "PRESETS",
    "CheckpointError",
    "CompiledStep",
    "DecodeStep",
    "Denoiser",
    "DiT",
    "DiTConfig",
    "DynamicStep",
    "HubUnavailableError",
    "StaticStep",
    "UncachedStep",
    "build",
    "check_state_dict",
    "from_pretrained",
    "load",
    "load_model",
    "read_config",
    "save_pretrained",
]
