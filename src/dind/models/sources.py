"""Where a checkpoint comes from: a local directory, or a Hugging Face hub repo (``owner/name``).

A hub id is downloaded with ``huggingface_hub.snapshot_download`` (config.json and safetensors
files only: pickled weights are never fetched). Without a network, or for an unknown repo, the
error says that the hub could not be reached and that no local directory of that name exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from dind.errors import UserError
from dind.models.config_file import CheckpointError
from dind.models.weights import INDEX_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, conversion_hint

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
HUB_OPTIONS = ("revision", "token", "cache_dir", "local_files_only", "force_download")
DOWNLOADED = ["config.json", WEIGHTS_NAME, INDEX_NAME, "*.safetensors"]
# a training run's layout (dind.training.checkpointing): <run>/checkpoints/latest, or latest.old
# where a save was interrupted between its two renames
RUN_CHECKPOINTS = ("checkpoints/latest", "checkpoints/latest.old")


class HubUnavailableError(UserError, OSError):
    """A hub id that could not be downloaded (offline, unknown or gated repo)."""


def is_hub_id(name: str) -> bool:
    return HUB_ID.fullmatch(name) is not None and ".." not in name


def run_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The latest checkpoint of the training run directory ``directory``, or None when it is not
    one (it holds a config.json itself, or no ``checkpoints/latest`` with a config.json)."""
    directory = Path(directory).expanduser()
    if (directory / "config.json").exists():
        return None
    for name in RUN_CHECKPOINTS:
        if (directory / name / "config.json").is_file():
            return directory / name
    return None


def resolve(path_or_hub_id: str | os.PathLike[str], **hub_options: Any) -> Path:
    """A local checkpoint directory, else a hub snapshot directory."""
    local = Path(path_or_hub_id).expanduser()
    if local.is_dir():
        return local
    name = str(path_or_hub_id)
    if local.is_file():
        if local.suffix in PICKLE_SUFFIXES:
            raise CheckpointError(conversion_hint(local))
        raise CheckpointError(
            f"{name} is a file: pass the checkpoint directory that holds config.json and "
            f"{WEIGHTS_NAME} ({local.parent})"
        )
    if not is_hub_id(name):
        raise FileNotFoundError(
            f"path_or_hub_id must be a checkpoint directory or an 'owner/name' hub id "
            f"(got {name!r}: no such directory, and not a hub id)"
        )
    unknown = sorted(set(hub_options) - set(HUB_OPTIONS))
    if unknown:
        raise TypeError(f"hub options must be among {list(HUB_OPTIONS)} (got {unknown})")
    return _download(name, hub_options)


def _download(name: str, hub_options: dict[str, Any]) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise ImportError(
            f"loading {name!r} from the hub needs huggingface_hub (pip install huggingface_hub); "
            "or pass a local directory with config.json and model.safetensors"
        ) from error
    try:
        return Path(snapshot_download(name, allow_patterns=DOWNLOADED, **hub_options))
    except Exception as error:  # offline, unknown repo, gated, ...: one message with the way out
        raise HubUnavailableError(
            f"could not download {name!r} from the Hugging Face hub ({type(error).__name__}: "
            f"{_first_line(error)}), and there is no local directory {name!r}; check the network "
            "and the repo id, or pass a local directory with config.json and model.safetensors"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"
