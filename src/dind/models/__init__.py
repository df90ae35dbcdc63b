"""The BD3-LM-compatible DiT, its presets, and checkpoint I/O (``load`` is ``dind.load``)."""

from dind.models.checkpoint import CheckpointError, check_state_dict, from_pretrained, save_pretrained
from dind.models.config import DiTConfig
from dind.models.config_file import read_config
from dind.models.dit import DiT
from dind.models.loading import load, load_model
from dind.models.presets import PRESETS, build
from dind.models.protocol import Denoiser
from dind.models.sources import HubUnavailableError

__all__ = [
    "PRESETS",
    "CheckpointError",
    "Denoiser",
    "DiT",
    "DiTConfig",
    "HubUnavailableError",
    "build",
    "check_state_dict",
    "from_pretrained",
    "load",
    "load_model",
    "read_config",
    "save_pretrained",
]
