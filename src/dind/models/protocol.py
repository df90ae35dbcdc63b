"""The narrow interface between samplers and a denoiser network.

Samplers see a model only through ``Denoiser``: the DiT implements it, and so do the toy oracles
the sampler tests use. Logits are over the model vocabulary (MASK included); samplers set the MASK
logit to -inf themselves.

Attention semantics (BD3-LM's block-diffusion mask, REFERENCE.md):
- ``logits(tokens, block_size=B)``: block-causal attention over ``tokens``; position q attends to
  position k iff ``k // B <= q // B``. With the last block noisy and earlier blocks clean this is
  exactly what the noisy half of the training input sees, so it is the *uncached reference* for
  sampling. ``block_size=None`` means full bidirectional attention (one global block, MDLM).
- ``new_cache`` / ``cached_logits`` / ``append_to_cache``: the exact KV cache. ``cached_logits``
  returns the logits of a block at ``[start, start + width)`` attending to the cached clean
  positions ``[0, start)`` and bidirectionally to itself; it does not change the cache.
  ``append_to_cache`` runs the (finished, clean) block once and stores its keys/values at
  ``[start, start + width)``; blocks must be appended left to right without gaps.
  Invariant: ``cached_logits(x[:, s:e], cache, start=s)`` after appending ``x[:, :s]`` block by
  block with the same B equals ``logits(x[:, :e], block_size=B)[:, s:e]`` to fp32 tolerance.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Denoiser(Protocol):
    vocab_size: int  # includes the MASK token
    mask_id: int

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        """(batch, length) long -> (batch, length, vocab) float32 logits."""
        ...

    def new_cache(self, batch_size: int, length: int) -> Any:
        """An empty cache able to hold ``length`` positions for ``batch_size`` rows."""
        ...

    def cached_logits(self, block: Tensor, *, cache: Any, start: int) -> Tensor:
        """(batch, width) tokens at [start, start + width) -> (batch, width, vocab) logits."""
        ...

    def append_to_cache(self, block: Tensor, *, cache: Any, start: int) -> None:
        """Store the clean block's keys/values at [start, start + width)."""
        ...


@runtime_checkable
class FeatureDenoiser(Denoiser, Protocol):
    def features(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        """(batch, length) long -> (batch, length, hidden) features (``logits`` before the output layer)."""
        ...

    def cached_features(self, block: Tensor, *, cache: Any, start: int) -> Tensor:
        """``cached_logits`` before the output layer: (batch, width, hidden)."""
        ...

    def project(self, features: Tensor) -> Tensor:
        """(..., hidden) features -> (..., vocab) fp32 logits."""
        ...


@runtime_checkable
class DecodeStep(Protocol):
    uses_cache: bool

    def bind(self, model: Denoiser) -> Denoiser:
        """The denoiser to call for one ``generate`` call (called once, at its start: the place to
        rebuild anything derived from the model's weights, so no weight change is ever missed)."""
        ...


def projects_consistently(model: object) -> bool:
    """Whether a sampler may use ``model``'s features and ``project`` in place of its logits: it is
    a ``FeatureDenoiser`` whose ``logits`` and ``cached_logits`` are defined on the class that
    defines ``project`` or above it, and not replaced on the instance. A subclass or a wrapper
    that changes the logits (a logit bias, guidance, a test's NaN) without its own ``project``
    is sampled through its logits, never silently bypassed."""
    if not isinstance(model, FeatureDenoiser):
        return False
    if any(name in getattr(model, "__dict__", {}) for name in ("logits", "cached_logits", "project")):
        return False
    mro = type(model).__mro__
    owner = next((cls for cls in mro if "project" in vars(cls)), None)
    for name in ("logits", "cached_logits"):
        defined = next((cls for cls in mro if name in vars(cls)), None)
        if owner is None or defined is None or (defined is not owner and issubclass(defined, owner)):
            return False
    return True
