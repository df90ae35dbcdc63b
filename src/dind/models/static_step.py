"""The static-shape cached decode step: fixed block width, fixed cache length, preallocated cache.

``DiT.cached_logits`` attends a block at [start, start + width) to the keys [0, start + width):
the key length grows block by block, so every block has new shapes (no CUDA graph, a recompile per
block under ``torch.compile``). ``StaticStep`` runs the same computation with shapes that never
change within a stage: the block's keys/values are written into the preallocated cache with
``index_copy_`` at tensor positions, so the step's inputs are (batch, width) tokens, a position
tensor and the cache buffers, whatever the block. Its weights are the ``FoldedDiT`` snapshot
(``dind.models.folded``: the constant adaLN modulation folded into the LayerNorms), rebuilt by
``new_cache`` whenever a parameter changed since (``fingerprint``).

Attention over the cache:
- CPU: SDPA over exactly the filled prefix [0, start + width), done by the opaque op
  ``dind::prefix_attention`` (the length is read from the position tensor inside the op, so a
  compiled graph keeps static shapes and never reads the unfilled part of the cache);
- CUDA: the model's attention backend over the whole cache length with the mask
  ``key < start + width`` (a tensor), which a CUDA graph can capture.
Positions at or after ``start + width`` hold stale or zero keys that are never attended, so logits
equal the dynamic path's up to float rounding and samples are identical in practice in fp32
(tests/models/test_static_step.py checks both). With bf16 weights the compiled step's GEMM
kernels (inductor's) round differently from the eager ones, so its samples can differ in a few
tokens: equally valid draws, not the same ones.

Two decode steps (``dind.models.protocol.DecodeStep``) run it: ``StaticStep()`` (eager) and
``CompiledStep()`` (under ``torch.compile``: inductor with frozen weights and max-autotune on CPU,
CUDA graphs on CUDA; ``dind.models.step_compile``; the first call per block width compiles,
61 s cold, 31 s with inductor's on-disk cache warm, 110-145 s loaded: benchmarks/results/
compile-cost.md). The caller builds one and passes it to ``generate`` through
``GenerateOptions(step=...)``; keep the object to reuse its graphs and preallocated caches across
calls. Nothing is stored on the model. ``bind(model)``, called once per ``generate`` call, returns
a ``StaticDenoiser`` for that model, refreshed: the eager step folds the weights anew every call
(microseconds to milliseconds), the compiled step compares an exact ``WeightSnapshot`` and
refolds and recompiles when any weight changed (however it was written: optimizer step,
``load_state_dict``, ``.data`` writes).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.attention import AttentionMask, KVCache
from dind.models.dit import DiT
from dind.models.folded import FoldedDiT, WeightSnapshot
from dind.models.protocol import Denoiser
from dind.models.sampling_forwards import check_tokens
from dind.models.static_attention import (
    attend_prefix,
    fused_visible,
    prefix_attention,
    visible_below,
    write_positions,
)
from dind.models.step_compile import CompileError, compile_step, fresh
from dind.models.steps import DECODE_STEPS

__all__ = ["CompileError", "CompiledStep", "StaticDenoiser", "StaticStep", "attend_prefix"]


class StaticDenoiser:
    """A ``Denoiser`` over a DiT whose cached step and cache append have static shapes; what
    ``StaticStep.bind`` / ``CompiledStep.bind`` return.

    ``compiled``: the step under ``torch.compile``. ``full_length``: attend over the whole cache
    length with a mask (True), or over exactly the filled prefix (False); None picks True on CUDA
    (a CUDA graph needs it), False elsewhere, decided again when the weights move. ``logits``
    (uncached and global forwards) is the DiT's own. ``new_cache`` hands out one preallocated
    cache per (batch, length, dtype), reset, so a compiled step always sees the same buffers.
    ``refresh()`` rebuilds what derives from the weights (see the module docstring)."""

    def __init__(self, model: DiT, *, compiled: bool = False, full_length: bool | None = None):
        if not isinstance(model, DiT):
            raise ValueError(
                f"the static step needs a dind DiT (got {type(model).__name__}); use DynamicStep()"
            )
        self.model = model
        self.compiled = compiled
        self._full_length = full_length
        self._caches: dict[tuple[int, int, torch.dtype], KVCache] = {}
        self._placement: tuple | None = None
        self._snapshot: WeightSnapshot | None = None
        self.refresh()

    def __repr__(self) -> str:
        return (
            f"StaticDenoiser({type(self.model).__name__}, compiled={self.compiled}, "
            f"full_length={self.full_length})"
        )

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def mask_id(self) -> int:
        return self.model.mask_id

    @property
    def model_length(self) -> int:
        return self.model.model_length

    def parameters(self):
        return self.model.parameters()

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        return self.model.logits(tokens, block_size=block_size)

    def new_cache(self, batch_size: int, length: int) -> KVCache:
        dtype = self.model._compute_dtype()
        key = (batch_size, length, dtype)
        cache = self._caches.get(key)
        if cache is None:
            cache = self.model.new_cache(batch_size, length)
            if self.compiled:
                for buffer in (*cache.keys, *cache.values):
                    torch._dynamo.mark_static_address(buffer)
            self._caches[key] = cache
        cache.reset()
        return cache

    def features(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        return self.model.features(tokens, block_size=block_size)

    @torch.no_grad()
    def cached_features(self, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        """(batch, width, hidden_dim) features of the block (the static step; no output layer)."""
        positions = self._positions(block, cache, start)
        return self._step(block, positions, cache.keys, cache.values, True)

    @torch.no_grad()
    def project(self, features: Tensor) -> Tensor:
        """The folded output layer at the given positions only: (..., hidden_dim) -> fp32 logits."""
        return self._folded.project(features)

    @torch.no_grad()
    def cached_logits(self, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        return self.project(self.cached_features(block, cache=cache, start=start))

    @torch.no_grad()
    def append_and_features(self, finished: Tensor, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        """``DiT.append_and_features`` with static shapes: the last finished block and the noisy
        block in one step of twice the width (earlier queued blocks are appended on their own
        first, so the shapes never change), the block-causal rule as a mask over the cache."""
        width = block.shape[1]
        for first in range(start, start + finished.shape[1] - width, width):
            self.append_to_cache(finished[:, first - start : first - start + width], cache=cache, start=first)
        start = start + finished.shape[1] - width
        tokens = torch.cat([finished[:, -width:], block], dim=1)
        positions = self._positions(tokens, cache, start)
        features = self._fused(tokens, positions, cache.keys, cache.values, True)
        cache.advance(width)
        return features[:, width:]

    @torch.no_grad()
    def append_to_cache(self, block: Tensor, *, cache: KVCache, start: int) -> None:
        positions = self._positions(block, cache, start)
        # compiled: the full step (one graph, no output layer in it); eager: stop after the last
        # keys/values
        self._step(block, positions, cache.keys, cache.values, self.compiled)
        cache.advance(block.shape[1])

    def refresh(self) -> None:
        """Fold the weights anew (eager), or when an exact snapshot no longer matches them or the
        compute dtype changed (compiled: refold and recompile, the graph froze the old weights)."""
        embedding = self.model.backbone.vocab_embed.embedding
        placement = (embedding.device, embedding.dtype, self.model._compute_dtype())
        moved = placement != self._placement
        if self.compiled and not moved and self._snapshot is not None and self._snapshot.matches(self.model):
            return
        with torch.no_grad():
            self._folded = FoldedDiT(self.model)
        if moved:
            self._caches.clear()
            device = placement[0]
            self.full_length = device.type == "cuda" if self._full_length is None else self._full_length
        if self.compiled:
            self._step = compile_step(fresh(self._eager_step), placement[0])
            self._fused = compile_step(fresh(self._eager_fused), placement[0])
            self._snapshot = WeightSnapshot(self.model)
        else:
            self._step, self._fused = self._eager_step, self._eager_fused
        self._placement = placement

    def _eager_fused(
        self, tokens: Tensor, positions: Tensor, keys: list[Tensor], values: list[Tensor], features: bool
    ) -> Tensor | None:
        """A finished block and the next noisy one (each ``width`` wide) at ``positions``: writes
        both blocks' keys/values (the noisy ones are overwritten later) and attends over the whole
        cache length with the block-causal mask; returns (batch, 2 width, hidden_dim) features."""
        mask_mod = fused_visible(positions[:1], tokens.shape[1] // 2)
        return self._masked_step(tokens, positions, keys, values, mask_mod, features)

    def _masked_step(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: list[Tensor],
        values: list[Tensor],
        mask_mod,
        features: bool,
    ) -> Tensor | None:
        """The folded step writing each layer's keys/values at ``positions`` and attending over the
        whole cache length through the model's attention backend with ``mask_mod`` (a tensor rule,
        so a CUDA graph or a compiled graph captures it)."""
        mask = AttentionMask(mask_mod, batch=None, query_length=tokens.shape[1], key_length=keys[0].shape[2])
        attention = self.model.attention

        def attend(index: int, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
            write_positions(keys[index], values[index], positions, key, value)
            dtype = query.dtype
            return attention(query, keys[index].to(dtype), values[index].to(dtype), mask)

        return self._folded.step(tokens, positions, attend, features=features)

    def _positions(self, block: Tensor, cache: KVCache, start: int) -> Tensor:
        check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        return torch.arange(start, start + block.shape[1], device=block.device)

    def _eager_step(
        self, block: Tensor, positions: Tensor, keys: list[Tensor], values: list[Tensor], features: bool
    ) -> Tensor | None:
        """The step over fixed shapes: writes the block's keys/values at ``positions`` in every
        layer; returns (batch, width, hidden_dim) features (None when ``features`` is False)."""
        if self.full_length:
            return self._masked_step(
                block, positions, keys, values, visible_below(positions[-1] + 1), features
            )

        end = positions[-1:] + 1
        # eager: the plain function (an op call costs a dispatch per layer)
        prefix = prefix_attention if torch.compiler.is_compiling() else attend_prefix

        def attend_cached(index: int, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
            write_positions(keys[index], values[index], positions, key, value)
            return prefix(query, keys[index], values[index], end)

        return self._folded.step(block, positions, attend_cached, features=features)


@DECODE_STEPS.register("static")
@attrs.define(eq=False)
class StaticStep:
    """The static-shape cached step, eager. ``full_length``: as ``StaticDenoiser``'s. The object
    keeps the ``StaticDenoiser`` of the last model it was bound to (graphs, caches)."""

    full_length: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(bool))
    )
    uses_cache: bool = attrs.field(default=True, init=False)
    _bound: StaticDenoiser | None = attrs.field(default=None, init=False, repr=False)

    compiled = False

    def bind(self, model: Denoiser) -> StaticDenoiser:
        if isinstance(model, StaticDenoiser):
            model = model.model
        if self._bound is None or self._bound.model is not model:
            self._bound = StaticDenoiser(model, compiled=self.compiled, full_length=self.full_length)
        else:
            self._bound.refresh()
        return self._bound


@DECODE_STEPS.register("compiled")
@attrs.define(eq=False)
class CompiledStep(StaticStep):
    """The static-shape cached step under ``torch.compile`` (see the module docstring)."""

    compiled = True
