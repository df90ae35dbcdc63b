"""Finding and reading a checkpoint's tensors: one model.safetensors, or shards listed by
model.safetensors.index.json, checked against the SHA-256s of checksums.sha256 when the directory
has one (dind's saves write it; checkpoints from elsewhere load without). Pickled weights (.bin,
.pt, .ckpt, ...) are never opened: unpickling runs arbitrary code, so the error says how to convert
a trusted file to safetensors once.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from dind.models.config_file import CheckpointError
from dind.outputs import checksum_problem

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def conversion_hint(pickled: Path) -> str:
    """How to turn a pickled state dict into model.safetensors (only for a file one trusts)."""
    target = pickled.parent / WEIGHTS_NAME
    return (
        f"{pickled} is a pickled PyTorch file; dind reads safetensors only and never unpickles "
        '(a pickle can run code). If you trust the file, convert it once: python -c "import torch; '
        "from safetensors.torch import save_file; s = torch.load('"
        f"{pickled}', map_location='cpu', weights_only=True); s = s.get('state_dict', s); "
        f"save_file({{k: v.contiguous() for k, v in s.items()}}, '{target}')\" "
        "(a Lightning .ckpt keeps its EMA weights apart: export those)"
    )


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files holding the checkpoint's tensors: [model.safetensors], or the shards
    its index names. Raises ``CheckpointError`` (pickled or no weights, bad index)."""
    single = directory / WEIGHTS_NAME
    if single.is_file():
        return [single]
    index = directory / INDEX_NAME
    if index.is_file():
        return sorted(set(shard_map(index).values()))
    pickled = sorted(path for path in directory.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise CheckpointError(conversion_hint(pickled[0]))
    raise CheckpointError(
        f"checkpoint directory {directory} must contain {WEIGHTS_NAME} or {INDEX_NAME} with its shards "
        f"(found: {sorted(path.name for path in directory.iterdir()) or 'nothing'})"
    )


def shard_map(index: Path) -> dict[str, Path]:
    """tensor name -> shard file, from a model.safetensors.index.json; every shard must exist."""
    try:
        content = json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{index} is not valid JSON ({error})") from None
    weight_map = content.get("weight_map") if isinstance(content, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: weight_map must be a non-empty object of tensor name -> shard file")
    shards: dict[str, Path] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise CheckpointError(
                f"{index}: weight_map[{name!r}] must be a .safetensors file name in the same directory "
                f"(got {shard!r})"
            )
        path = index.parent / shard
        if not path.is_file():
            raise CheckpointError(f"{index}: shard {shard} (holding {name}) is missing from {index.parent}")
        shards[name] = path
    return shards


def read_state(directory: Path, *, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Every tensor of the checkpoint in ``directory``, on ``device``. For shards, each tensor must
    be in the shard the index names, and no shard may hold a tensor the index does not list."""
    files = weight_files(directory)
    problem = checksum_problem(directory, {path.name for path in files} | {INDEX_NAME})
    if problem is not None:
        raise CheckpointError(problem)
    if files == [directory / WEIGHTS_NAME]:
        return _load(files[0], device)
    wanted = shard_map(directory / INDEX_NAME)
    state: dict[str, Tensor] = {}
    for path in files:
        tensors = _load(path, device)
        listed = {name for name, shard in wanted.items() if shard == path}
        absent, unlisted = sorted(listed - set(tensors)), sorted(set(tensors) - listed)
        if absent or unlisted:
            raise CheckpointError(
                f"{path} does not match {INDEX_NAME}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {absent}" if absent else "",
                        f"holds tensors the index puts elsewhere or omits {unlisted}" if unlisted else "",
                    )
                    if part
                )
            )
        state.update(tensors)
    return state


def _load(path: Path, device: torch.device | str) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
