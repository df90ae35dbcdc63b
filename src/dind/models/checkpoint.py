"""Checkpoint I/O in BD3-LM's release format: a directory with config.json + model.safetensors.

``from_pretrained`` reads a local directory, or a hub id through huggingface_hub when that is
installed and the hub is reachable. ``save_pretrained`` writes both files atomically (each to a
temporary file in the same directory, then renamed over the target).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from dind.models.config import DiTConfig
from dind.models.dit import DiT

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint whose tensors do not match the model: every problem listed in one message."""


def save_pretrained(model: DiT, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s config.json (BD3-LM format) and model.safetensors (tensors in their own
    dtype) into the directory ``path`` (created if missing); returns the directory."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.to_bd3lm_config(
        sampling_eps_min=_short(model.sampling_eps_min), sampling_eps_max=_short(model.sampling_eps_max)
    )
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    _atomic_write(
        directory / WEIGHTS_NAME, lambda temporary: save_file(state, temporary, metadata={"format": "pt"})
    )
    _atomic_write(
        directory / CONFIG_NAME,
        lambda temporary: Path(temporary).write_text(json.dumps(config, indent=2) + "\n"),
    )
    return directory


def from_pretrained(
    path_or_hub_id: str | os.PathLike[str],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> DiT:
    """Load a DiT from a BD3-LM-format directory (or hub id). ``overrides`` replace config fields
    that do not change the weights' shapes (``attn_backend``, ``dropout``, ...). Raises a
    ``CheckpointError`` listing every missing, unexpected or mis-shaped tensor. ``dtype`` casts the
    parameters only (buffers stay as saved). Returned in eval mode."""
    directory = _resolve(path_or_hub_id)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for required in (config_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(f"checkpoint directory must contain {required.name} (missing {required})")
    config = DiTConfig.from_bd3lm_config(json.loads(config_path.read_text()), **overrides)
    state = load_file(str(weights_path), device=str(torch.device(device)) if device is not None else "cpu")
    model = DiT(config, device="meta")
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True, assign=True)
    if dtype is not None:  # parameters only: the rotary frequencies and eps buffers stay fp32
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.data = parameter.data.to(dtype)
    return model.eval()


def check_state_dict(model: DiT, state: dict[str, Tensor]) -> None:
    """Raise one ``CheckpointError`` naming all missing keys, unexpected keys and shape mismatches."""
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{name}: checkpoint {tuple(state[name].shape)} vs model {expected[name]}"
        for name in set(expected) & set(state)
        if tuple(state[name].shape) != expected[name]
    )
    problems = [f"missing keys ({len(missing)}): {missing}"] if missing else []
    problems += [f"unexpected keys ({len(unexpected)}): {unexpected}"] if unexpected else []
    problems += [f"shape mismatches ({len(mismatched)}): {mismatched}"] if mismatched else []
    if problems:
        raise CheckpointError("checkpoint does not match the model config:\n  " + "\n  ".join(problems))


def _resolve(path_or_hub_id: str | os.PathLike[str]) -> Path:
    """A local directory, else a hub snapshot (huggingface_hub needed, and the hub reachable)."""
    local = Path(path_or_hub_id).expanduser()
    if local.is_dir():
        return local
    name = str(path_or_hub_id)
    if local.exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise FileNotFoundError(
            f"path_or_hub_id must be a checkpoint directory or an 'owner/name' hub id "
            f"(got {name!r}, which is neither)"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise ImportError(
            f"loading {name!r} from the hub needs huggingface_hub (pip install 'dind[hub]'); "
            "or pass a local directory with config.json and model.safetensors"
        ) from error
    try:
        return Path(snapshot_download(name, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME]))
    except Exception as error:  # offline, unknown repo, gated, ...: one message with the way out
        raise OSError(
            f"could not download {name!r} from the hub ({type(error).__name__}: {error}); "
            "pass a local directory with config.json and model.safetensors instead"
        ) from error


def _atomic_write(target: Path, write: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _short(buffer: Tensor) -> float:
    """The buffer's value without fp32 noise in the JSON (1e-3, not 0.0010000000474974513)."""
    return float(f"{float(buffer):.7g}")
