"""The BD3-LM-compatible DiT, its presets, and checkpoint I/O."""

from dind.models.checkpoint import CheckpointError, check_state_dict, from_pretrained, save_pretrained
from dind.models.config import DiTConfig
from dind.models.dit import DiT
from dind.models.loading import load_model
from dind.models.presets import PRESETS, build
from dind.models.protocol import Denoiser

__all__ = [
    "PRESETS",
    "CheckpointError",
    "Denoiser",
    "DiT",
    "DiTConfig",
    "build",
    "check_state_dict",
    "from_pretrained",
    "load_model",
    "save_pretrained",
]
