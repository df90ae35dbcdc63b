"""Checkpoint I/O in BD3-LM's release format: config.json + model.safetensors (or shards).

``save_pretrained`` writes every file atomically (a temporary file in the same directory, then
renamed over the target) and removes weight files of an earlier save that the new one replaces.
``from_pretrained`` reads a local directory, or a hub id through ``dind.models.sources``; config.json
is checked strictly (``dind.models.config_file``) and the tensors must match the config exactly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from dind.models.config import read_config
from dind.models.config_file import CODE_REPO, CheckpointError
from dind.models.sources import HUB_OPTIONS, resolve
from dind.models.weights import INDEX_NAME, WEIGHTS_NAME, read_state
from dind.outputs import record_checksums

if TYPE_CHECKING:  # the DiT imports this module (its hub hooks); the class is passed in here
    from dind.models.dit import DiT

CONFIG_NAME = "config.json"

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "check_state_dict",
    "from_pretrained",
    "load_directory",
    "save_pretrained",
]


def save_pretrained(
    model: DiT,
    path: str | os.PathLike[str],
    *,
    code_repo: str | None = CODE_REPO,
    max_shard_size: int | str | None = None,
) -> Path:
    """Write ``model``'s config.json (BD3-LM format, with ``auto_map`` naming ``code_repo``'s
    remote code) and its tensors in their own dtype into the directory ``path`` (created if missing):
    one model.safetensors, or shards + model.safetensors.index.json when ``max_shard_size`` (bytes
    or "5GB") is set. Returns the directory."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.to_bd3lm_config(
        sampling_eps_min=_short(model.sampling_eps_min),
        sampling_eps_max=_short(model.sampling_eps_max),
        code_repo=code_repo,
    )
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    written = _write_tensors(state, directory, max_shard_size)
    _atomic_write(
        directory / CONFIG_NAME,
        lambda temporary: Path(temporary).write_text(json.dumps(config, indent=2) + "\n"),
    )
    for stale in _weight_names(directory) - written:  # an earlier save's single file or shards
        (directory / stale).unlink(missing_ok=True)
    record_checksums(directory, written)  # loading checks them: corrupted weights are named
    return directory


def _write_tensors(state: dict[str, Tensor], directory: Path, max_shard_size: int | str | None) -> set[str]:
    metadata = {"format": "pt"}
    if max_shard_size is None:
        _atomic_write(
            directory / WEIGHTS_NAME, lambda temporary: save_file(state, temporary, metadata=metadata)
        )
        return {WEIGHTS_NAME}
    from huggingface_hub import split_torch_state_dict_into_shards

    split = split_torch_state_dict_into_shards(state, max_shard_size=max_shard_size)
    for shard, names in split.filename_to_tensors.items():
        part = {name: state[name] for name in names}
        _atomic_write(
            directory / shard, lambda temporary, part=part: save_file(part, temporary, metadata=metadata)
        )
    if not split.is_sharded:
        return set(split.filename_to_tensors)
    index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
    _atomic_write(
        directory / INDEX_NAME, lambda temporary: Path(temporary).write_text(json.dumps(index, indent=2))
    )
    return {*split.filename_to_tensors, INDEX_NAME}


def _weight_names(directory: Path) -> set[str]:
    """Weight files a save of dind's writes: model.safetensors, model-*.safetensors, the index."""
    return {
        path.name
        for path in directory.glob("model*.safetensors*")
        if path.name in (WEIGHTS_NAME, INDEX_NAME)
        or path.name.startswith("model-")
        and path.suffix == ".safetensors"
    }


def from_pretrained(
    model_class: type[DiT],
    path_or_hub_id: str | os.PathLike[str],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> DiT:
    """Load a ``model_class`` (``DiT``) from a BD3-LM-format directory or hub id: what
    ``DiT.from_pretrained`` and ``dind.models.from_pretrained`` do (``dind.load`` also takes preset
    names). ``overrides``: config fields that do not change the weights' shapes (``attn_backend``,
    ``dropout``, ...) and, for a hub id, ``revision``/``token``/``cache_dir``/``local_files_only``/
    ``force_download``. Returned in eval mode."""
    hub = {key: overrides.pop(key) for key in HUB_OPTIONS if key in overrides}
    directory = resolve(path_or_hub_id, **hub)
    return load_directory(model_class, directory, device=device, dtype=dtype, **overrides)


def load_directory(
    model_class: type[DiT],
    directory: Path,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> DiT:
    """Load the checkpoint in a local ``directory``. Raises ``CheckpointError`` for a bad
    config.json (naming the field), pickled weights, or tensors that do not match the config
    (listing every missing, unexpected or mis-shaped one). ``dtype`` casts the parameters only
    (buffers stay as saved)."""
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"checkpoint directory must contain {CONFIG_NAME} (missing {config_path})")
    config = read_config(config_path, **overrides)
    state = read_state(directory, device=torch.device(device) if device is not None else "cpu")
    model = model_class(config, device="meta")
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True, assign=True)
    if dtype is not None:
        cast_parameters(model, dtype)
    return model.eval()


def cast_parameters(model: DiT, dtype: torch.dtype) -> None:
    """Parameters only: the rotary frequencies and the eps buffers stay fp32."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.to(dtype)


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
    not_float = sorted(
        name for name, tensor in state.items() if name in expected and not tensor.is_floating_point()
    )
    problems += [f"non-floating-point tensors ({len(not_float)}): {not_float}"] if not_float else []
    if problems:
        raise CheckpointError("checkpoint does not match the model config:\n  " + "\n  ".join(problems))


def _atomic_write(target: Path, write: Callable[[str], Any]) -> None:
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
