"""``dind.load``: the one way to get a model from a name.

A local path wins (a checkpoint directory, or a training run directory: its latest checkpoint);
then a preset name (a freshly initialised model); then a shipped model (``demo``); then a hub id
(``owner/name``, downloaded when the hub is reachable). The command line, the demo and the
sweeps all go through here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from dind.models.checkpoint import cast_parameters, load_directory
from dind.models.dit import DiT
from dind.models.initialization import INITS, Init
from dind.models.presets import PRESETS, build
from dind.models.sources import HUB_OPTIONS, is_hub_id, resolve, run_checkpoint
from dind.shipped import describe, shipped_path

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def load(
    path_or_preset: str | os.PathLike[str],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    init: Init | None = None,
    seed: int | None = None,
    **options: Any,
) -> DiT:
    """A DiT in eval mode, on ``device`` (default: torch's default device), its parameters in
    ``dtype``. Default dtype: fp32 for presets; a checkpoint keeps its stored dtype, except that a
    bf16/fp16-stored checkpoint loaded onto the CPU computes in fp32 (CPUs lack fast half-precision
    matmuls, and BD3-LM keeps its residual stream in fp32: bf16 is its autocast precision on GPU,
    not its weights' dtype). Pass ``dtype`` to choose otherwise; the CLI follows the same rule.

    - A local directory in BD3-LM/Hugging Face format (config.json + model.safetensors, or
      shards with model.safetensors.index.json), or a training run directory (``dind train``'s
      ``out_dir``): its latest checkpoint, announced in one line on stderr.
    - A preset name (``dind list``: ``micro``, ``tiny``, ``bd3lm-110m``): untrained weights drawn
      with ``init`` (default "random": logits that depend on the input) from a generator seeded
      with ``seed`` (default 0), so the same call gives the same model.
    - A shipped model (``dind list``: ``demo`` = ``tiny-shakespeare``, the trained demo model),
      read from the package, never from a hub. A local path of the same name wins.
    - A hub id ``owner/name``; ``options`` may hold ``revision``, ``token``, ``cache_dir``,
      ``local_files_only``, ``force_download``.

    Other ``options`` replace config fields that do not change the weights' shapes (``dropout``,
    ``attn_backend``, ...); for presets any field. Errors: ``FileNotFoundError`` (no such directory
    and not a hub id), ``dind.models.sources.HubUnavailableError`` (hub unreachable),
    ``CheckpointError`` (a bad checkpoint, naming the file and field).
    """
    device, dtype = _device(device), _dtype(dtype)
    spec = str(path_or_preset)
    if not Path(spec).expanduser().exists() and spec in PRESETS:
        model = _preset(spec, device, init, seed, options)
        if dtype is not None:
            cast_parameters(model, dtype)
        return model.eval()
    if init is not None or seed is not None:
        raise ValueError(
            f"init and seed apply to preset names only ({spec!r} is a checkpoint; got init={init!r}, "
            f"seed={seed!r})"
        )
    shipped = shipped_path(spec, "model", parameter="path_or_preset")
    if shipped is not None:
        spec = str(shipped)
    elif Path(spec).expanduser().is_dir():
        spec = _latest_of_run(spec)
    elif not Path(spec).expanduser().exists() and not is_hub_id(spec):
        raise FileNotFoundError(
            f"path_or_preset must be a checkpoint or run directory, a preset ({', '.join(PRESETS.names())}), "
            f"a shipped model ({describe('model')}) or an 'owner/name' hub id (got {spec!r}: no such "
            "directory, and none of the others)"
        )
    hub = {key: options.pop(key) for key in HUB_OPTIONS if key in options}
    model = load_directory(DiT, resolve(spec, **hub), device=device, dtype=dtype, **options)
    if dtype is None and _computes_in_half_on_cpu(model):
        cast_parameters(model, torch.float32)
    return model


def _latest_of_run(spec: str) -> str:
    checkpoint = run_checkpoint(spec)
    if checkpoint is None:
        directory = Path(spec).expanduser()
        if not (directory / "config.json").exists() and (directory / "config.yaml").is_file():
            raise FileNotFoundError(
                f"path_or_preset {spec!r} is a training run directory without a checkpoint yet "
                f"(no {directory / 'checkpoints/latest/config.json'}); load it once it has saved one"
            )
        return spec
    print(
        f"dind: {spec} is a training run directory: loading its latest checkpoint {checkpoint}",
        file=sys.stderr,
    )
    return str(checkpoint)


def _computes_in_half_on_cpu(model: DiT) -> bool:
    weight = model.backbone.vocab_embed.embedding
    return weight.device.type == "cpu" and weight.dtype in (torch.bfloat16, torch.float16)


def _preset(
    name: str, device: torch.device | None, init: Init | None, seed: int | None, options: dict
) -> DiT:
    init = "random" if init is None else init
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} (got {init!r})")
    seed = 0 if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64) (got {seed!r})")
    unknown = sorted(set(options) & set(HUB_OPTIONS))
    if unknown:
        raise ValueError(f"{unknown} apply to hub ids only ({name!r} is a preset)")
    generator = torch.Generator().manual_seed(seed)
    return build(name, generator=generator, init=init, device=device, **options)


def _device(device: torch.device | str | None) -> torch.device | None:
    if device is None or isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be a torch device such as 'cpu' or 'cuda:0' (got {device!r}: {error})"
        ) from None


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype must be a floating torch.dtype or one of {sorted(DTYPES)} (got {dtype!r})")


def load_model(spec: str | os.PathLike[str], **kwargs: Any) -> DiT:
    """Deprecated: the earlier name of ``load`` (same arguments); use ``dind.load``."""
    return load(spec, **kwargs)


def from_pretrained(
    path_or_hub_id: str | os.PathLike[str],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> DiT:
    """``DiT.from_pretrained``: a BD3-LM-format directory or hub id, stored dtype kept (``load``
    also takes presets and applies the CPU dtype rule)."""
    return DiT.from_pretrained(path_or_hub_id, device=device, dtype=dtype, **overrides)
