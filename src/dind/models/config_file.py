"""Reading and writing BD3-LM's config.json, strictly.

Every field is checked for its type and value before a ``DiTConfig`` is built, and every error
names the file and the field. The fields that fix the weights' shapes (``vocab_size``,
``hidden_dim``, ``n_blocks``, ``n_heads``, ``cond_dim``) have no default: BD3-LM's own defaults
(``cond_dim`` 129, for one) are not safe to guess, so a missing one is an error. An
autoregressive checkpoint (``causal: true``) or one without adaLN (``adaln: false``) is not the
network dind implements and is refused. Keys dind does not know (``transformers_version``,
``torch_dtype``, ...) are ignored.

``auto_map`` names BD3-LM's remote-code classes (``configuration_bd3lm.BD3LMConfig`` and
``modeling_bd3lm.BD3LM``), prefixed with ``<code repo>--`` so that ``transformers`` fetches that
code from the BD3-LM hub repo when the folder itself holds no Python files.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from pathlib import Path
from typing import Any

import attrs

from dind.errors import UserError

CODE_REPO = "kuleshov-group/bd3lm-owt-block_size4"
CONFIG_CLASS = "configuration_bd3lm.BD3LMConfig"
MODEL_CLASS = "modeling_bd3lm.BD3LM"

REQUIRED = ("vocab_size", "hidden_dim", "n_blocks", "n_heads", "cond_dim")
# DiTConfig fields with a default that cannot change the weights' shapes (BD3-LM's own defaults)
OPTIONAL = {
    "model_length": 1024,
    "dropout": 0.1,
    "time_conditioning": False,
    "attn_backend": "sdpa",
    "block_size": None,
    "mask_id": None,
}


class CheckpointError(UserError, ValueError):
    """An unusable checkpoint: bad config.json, tensors that do not match, a pickled weights file.
    The message names the file, and the field or tensors."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# field -> (accepts, rule in words): the type checks; DiTConfig's validators check the ranges
_TYPES: dict[str, tuple[Any, str]] = {
    **{name: (_integer, "an integer") for name in (*REQUIRED, "model_length")},
    "block_size": (lambda v: v is None or _integer(v), "an integer or null"),
    "mask_id": (lambda v: v is None or _integer(v), "an integer or null"),
    "dropout": (_number, "a number"),
    "attn_backend": (lambda v: isinstance(v, str), "a string"),
    **{
        name: (lambda v: isinstance(v, bool), "true or false")
        for name in ("time_conditioning", "cross_attn", "var_min", "return_dict", "causal", "adaln")
    },
    "sampling_eps_min": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "sampling_eps_max": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "model_type": (lambda v: v == "bd3lm", '"bd3lm" (dind reads BD3-LM checkpoints only)'),
    "architectures": (
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
        "a list of strings",
    ),
    "auto_map": (
        lambda v: isinstance(v, dict) and all(isinstance(item, str) for item in v.values()),
        "an object of strings",
    ),
}


def parse_config(content: Any, config_class: type, *, source: str = "config.json", **overrides: Any) -> Any:
    """A ``config_class`` (``DiTConfig``) from the decoded JSON ``content``; ``overrides`` replace its
    fields after the file's values are checked. Raises ``CheckpointError`` naming ``source`` and
    the field."""
    DiTConfig = config_class  # the one class it builds, passed in: config_file never imports config
    if not isinstance(content, dict):
        raise CheckpointError(f"{source} must hold a JSON object (got {type(content).__name__})")
    fields = {field.name for field in attrs.fields(DiTConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise CheckpointError(f"overrides must be DiTConfig fields (got {unknown}; fields: {sorted(fields)})")
    _check_fields(content, source, skip=set(overrides))
    values = {**OPTIONAL, **{key: value for key, value in content.items() if key in fields}, **overrides}
    try:
        return DiTConfig(**values)
    except (ValueError, TypeError) as error:
        hint = (
            " (pass attn_backend='sdpa' to load it with a kernel dind has)"
            if "attn_backend" in str(error)
            else ""
        )
        raise CheckpointError(f"{source}: {error}{hint}") from None


def _check_fields(content: dict[str, Any], source: str, *, skip: set[str]) -> None:
    missing = [name for name in REQUIRED if name not in content and name not in skip]
    if missing:
        guesses = {
            name: difflib.get_close_matches(name, [key for key in content if key not in _TYPES], n=1)
            for name in missing
        }
        hints = "".join(
            f"; found {guess[0]!r}: a misspelt {name!r}?" for name, guess in guesses.items() if guess
        )
        raise CheckpointError(
            f"{source} must set {', '.join(missing)} (missing; these fix the weights' shapes and have no "
            f"safe default){hints}"
        )
    for name, value in content.items():
        if name in _TYPES and name not in skip:
            accepts, rule = _TYPES[name]
            if not accepts(value):
                raise CheckpointError(f"{source}: {name} must be {rule} (got {value!r})")
    if content.get("causal") is True:
        raise CheckpointError(
            f"{source}: causal is true: this is an autoregressive checkpoint (BD3-LM's AR baseline), "
            "not a block diffusion model; dind samples and trains diffusion checkpoints only"
        )
    if content.get("adaln") is False:
        raise CheckpointError(
            f"{source}: adaln is false: dind's DiT always applies adaLN modulation, so these weights "
            "do not fit it"
        )
    low, high = content.get("sampling_eps_min"), content.get("sampling_eps_max")
    if _number(low) and _number(high) and low >= high:
        raise CheckpointError(
            f"{source}: sampling_eps_min must be below sampling_eps_max (got {low!r}, {high!r})"
        )


def read_config_json(path: str | os.PathLike[str]) -> Any:
    """The decoded JSON content of the config.json at ``path`` (``dind.models.read_config`` checks
    it); a file that is not UTF-8 or not JSON is a ``CheckpointError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    return content


def auto_map(code_repo: str | None = CODE_REPO) -> dict[str, str]:
    """The ``auto_map`` that lets ``transformers``' Auto classes (trust_remote_code) build
    BD3-LM's own model from the folder: classes from ``code_repo`` on the hub, or from Python files
    in the folder itself when ``code_repo`` is None."""
    prefix = f"{code_repo}--" if code_repo else ""
    return {"AutoConfig": prefix + CONFIG_CLASS, "AutoModelForMaskedLM": prefix + MODEL_CLASS}
