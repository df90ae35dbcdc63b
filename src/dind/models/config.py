"""The DiT's configuration, and its translation to and from BD3-LM's config.json."""

from __future__ import annotations

import os
from typing import Any

import attrs

from dind.attention import ATTENTION_BACKENDS
from dind.models.config_file import CODE_REPO, auto_map, parse_config, read_config_json
from dind.validation import bounded_int, optional_positive_int

# Sizes far beyond any trained model (GPT-3 175B: hidden 12288, 96 blocks, 96 heads; the largest
# vocabularies ~256k): a value past these is a typo, refused before any tensor is allocated.
LIMITS = {
    "vocab_size": 2**22,
    "hidden_dim": 2**16,
    "n_blocks": 1024,
    "n_heads": 1024,
    "cond_dim": 2**16,
    "model_length": 2**20,
}


def _dropout(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1) (got {value!r})")


def _backend_name(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in ATTENTION_BACKENDS:
        raise ValueError(f"attn_backend must be one of {list(ATTENTION_BACKENDS.names())} (got {value!r})")


def _bool(instance: object, attribute: attrs.Attribute, value: bool) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be a bool (got {value!r})")


@attrs.frozen
class DiTConfig:
    """The BD3-LM DiT's hyper-parameters (field names as in BD3-LM's config.json).

    ``vocab_size`` includes the MASK token; ``mask_id`` None means the last id (``mask_token_id``).
    ``attn_backend`` names an ``ATTENTION_BACKENDS`` entry. ``block_size`` is the block size the
    checkpoint was trained with: informational only (the forward passes take the block size as an
    argument). ``model_length`` is the training length; the network itself (rotary positions) does
    not enforce it.
    """

    vocab_size: int = attrs.field(validator=bounded_int(LIMITS["vocab_size"]))
    hidden_dim: int = attrs.field(validator=bounded_int(LIMITS["hidden_dim"]))
    n_blocks: int = attrs.field(validator=bounded_int(LIMITS["n_blocks"]))
    n_heads: int = attrs.field(validator=bounded_int(LIMITS["n_heads"]))
    cond_dim: int = attrs.field(validator=bounded_int(LIMITS["cond_dim"]))
    model_length: int = attrs.field(validator=bounded_int(LIMITS["model_length"]))
    dropout: float = attrs.field(default=0.1, converter=float, validator=_dropout)
    time_conditioning: bool = attrs.field(default=False, validator=_bool)
    mask_id: int | None = attrs.field(default=None)
    attn_backend: str = attrs.field(default="sdpa", validator=_backend_name)
    block_size: int | None = attrs.field(default=None, validator=optional_positive_int)

    @mask_id.validator
    def _check_mask_id(self, attribute: attrs.Attribute, value: int | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
            raise ValueError(
                f"mask_id must be an int in [0, vocab_size) (got {value!r}, vocab_size {self.vocab_size})"
            )

    def __attrs_post_init__(self) -> None:
        if self.hidden_dim % self.n_heads:
            raise ValueError(f"n_heads must divide hidden_dim (got {self.n_heads}, {self.hidden_dim})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim = hidden_dim / n_heads must be even for rotary (got {self.head_dim})")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.n_heads

    @property
    def mask_token_id(self) -> int:
        """The MASK token id: ``mask_id``, or the last id of the vocabulary when that is None."""
        return self.vocab_size - 1 if self.mask_id is None else self.mask_id

    def to_bd3lm_config(
        self,
        *,
        sampling_eps_min: float = 1e-3,
        sampling_eps_max: float = 1.0,
        code_repo: str | None = CODE_REPO,
    ) -> dict[str, Any]:
        """BD3-LM's config.json content, with ``auto_map`` (see ``dind.models.config_file.auto_map``)
        and ``mask_id`` when set explicitly. ``block_size`` is always written, as BD3-LM's code reads
        it: ``model_length`` (one global block) when the config has none."""
        config: dict[str, Any] = {
            "architectures": ["BD3LM"],
            "auto_map": auto_map(code_repo),
            "model_type": "bd3lm",
            "attn_backend": self.attn_backend,
            "block_size": self.model_length if self.block_size is None else self.block_size,
            "cond_dim": self.cond_dim,
            "cross_attn": True,
            "dropout": self.dropout,
            "hidden_dim": self.hidden_dim,
            "model_length": self.model_length,
            "n_blocks": self.n_blocks,
            "n_heads": self.n_heads,
            "return_dict": False,
            "sampling_eps_max": sampling_eps_max,
            "sampling_eps_min": sampling_eps_min,
            "time_conditioning": self.time_conditioning,
            "var_min": True,
            "vocab_size": self.vocab_size,
        }
        if self.mask_id is not None:
            config["mask_id"] = self.mask_id
        return dict(sorted(config.items()))

    @classmethod
    def from_bd3lm_config(
        cls, config: dict[str, Any], *, source: str = "config.json", **overrides: Any
    ) -> DiTConfig:
        """Read BD3-LM's config.json content, strictly (``dind.models.config_file.parse_config``):
        wrong types and values are errors naming ``source`` and the field; the shape fields
        (vocab_size, hidden_dim, n_blocks, n_heads, cond_dim) are required; the others take BD3-LM's
        defaults; unknown keys are ignored. ``overrides`` replace fields (e.g. ``attn_backend`` when
        the file names a kernel not built here)."""
        return parse_config(config, cls, source=source, **overrides)


def read_config(path: str | os.PathLike[str], **overrides: Any) -> DiTConfig:
    """Parse and check the config.json at ``path`` (see ``DiTConfig.from_bd3lm_config``)."""
    return DiTConfig.from_bd3lm_config(read_config_json(path), source=str(path), **overrides)
