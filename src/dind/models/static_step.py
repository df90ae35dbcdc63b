"""The static-shape cached decode step: fixed block width, fixed cache length, preallocated cache.

``DiT.cached_logits`` attends a block at [start, start + width) to the keys [0, start + width):
the key length grows block by block, so every block has new shapes (no CUDA graph, a recompile per
block under ``torch.compile``). ``StaticStep`` runs the same computation with shapes that never
change within a stage: the block's keys/values are written into the preallocated cache with
``index_copy_`` at tensor positions, every query attends to the whole cache length L with the mask
``key < start + width`` (a tensor, not a Python int), so the step's inputs are (batch, width)
tokens, a 0-d position tensor and the cache buffers, whatever the block. That is what
``torch.compile`` captures: inductor kernels on CPU, CUDA graphs on GPU (mode "reduce-overhead";
the cache buffers are marked static addresses, so replays read them in place).

Appending a finished block is the same step without the output layer (its keys/values are the
clean block's, written at the same positions), then ``cache.advance``. Positions at or after
``start + width`` hold stale or zero keys; the mask hides them, so the logits equal the dynamic
path's up to float rounding (a longer, masked reduction) and samples are identical in practice
(tests/sampling/test_static_step.py checks both).

``static_step(model, compiled=...)`` returns one wrapper per (model, mode), so compiled graphs and
the preallocated cache are reused across ``generate`` calls.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dind.attention import AttentionMask, KVCache
from dind.models.dit import DiT, _check_tokens

STEP_MODES = ("dynamic", "static", "compiled")


def check_step_mode(step_mode: object) -> str:
    """``step_mode`` must be one of STEP_MODES; returns it."""
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {list(STEP_MODES)} (got {step_mode!r})")
    return step_mode  # type: ignore[return-value]


def _visible_below(limit: Tensor):
    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return key < limit

    return mask_mod


class StaticStep:
    """A ``Denoiser`` over a DiT whose cached step and cache append have static shapes.

    ``compiled``: wrap both in ``torch.compile`` (``mode="reduce-overhead"`` on CUDA, i.e. CUDA
    graphs; inductor's default on CPU). ``logits`` (uncached and global forwards) is the DiT's own.
    ``new_cache`` hands out one preallocated cache per (batch, length, dtype), reset, so a compiled
    step always sees the same buffers."""

    def __init__(self, model: DiT, *, compiled: bool = False):
        if not isinstance(model, DiT):
            raise ValueError(
                f"the static step needs a dind DiT (got {type(model).__name__}); use step_mode='dynamic'"
            )
        self.model = model
        self.compiled = compiled
        self._caches: dict[tuple[int, int, torch.dtype], KVCache] = {}
        self._step = self._eager_step
        if compiled:
            device = model.backbone.vocab_embed.embedding.device
            mode = "reduce-overhead" if device.type == "cuda" else None
            self._step = torch.compile(self._eager_step, mode=mode, fullgraph=True, dynamic=False)

    def __repr__(self) -> str:
        return f"StaticStep({type(self.model).__name__}, compiled={self.compiled})"

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def mask_id(self) -> int:
        return self.model.mask_id

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

    @torch.no_grad()
    def cached_logits(self, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        positions = self._positions(block, cache, start)
        return self._step(block, positions, cache.keys, cache.values, True)

    @torch.no_grad()
    def append_to_cache(self, block: Tensor, *, cache: KVCache, start: int) -> None:
        positions = self._positions(block, cache, start)
        self._step(block, positions, cache.keys, cache.values, False)
        cache.advance(block.shape[1])

    def _positions(self, block: Tensor, cache: KVCache, start: int) -> Tensor:
        _check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        return torch.arange(start, start + block.shape[1], device=block.device)

    def _eager_step(
        self, block: Tensor, positions: Tensor, keys: list[Tensor], values: list[Tensor], logits: bool
    ) -> Tensor | None:
        """The step over fixed shapes: writes the block's keys/values at ``positions`` in every
        layer; returns (batch, width, vocab) fp32 logits (None when ``logits`` is False: the last
        layer stops after its keys/values)."""
        model = self.model
        conditioning = model._conditioning(None, block)
        x = model.backbone.vocab_embed(block)
        cos, sin = model._rotary(positions)
        mask = AttentionMask(
            _visible_below(positions[-1] + 1),
            batch=None,
            query_length=block.shape[1],
            key_length=keys[0].shape[2],
        )
        layers = model.backbone.blocks
        for index, layer in enumerate(layers):
            if not logits and index == len(layers) - 1:
                _, key, value = layer.query_key_value(x, conditioning, cos, sin)
                _write(keys[index], values[index], positions, key, value)
                return None
            x = layer(x, conditioning, cos, sin, _attend(model, keys[index], values[index], positions, mask))
        return model.backbone.output_layer(x, conditioning).float()


def _write(keys: Tensor, values: Tensor, positions: Tensor, key: Tensor, value: Tensor) -> None:
    keys.index_copy_(2, positions, key.to(keys.dtype))
    values.index_copy_(2, positions, value.to(values.dtype))


def _attend(model: DiT, keys: Tensor, values: Tensor, positions: Tensor, mask: AttentionMask):
    def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        _write(keys, values, positions, key, value)
        return model.attention(query, keys.to(query.dtype), values.to(query.dtype), mask)

    return attend


def static_step(model: DiT, *, compiled: bool = False) -> StaticStep:
    """The model's StaticStep (one per model and ``compiled``: graphs and caches are reused)."""
    if isinstance(model, StaticStep):
        model = model.model
    per_model = model.__dict__.setdefault("_dind_static_steps", {})  # dies with the model
    if compiled not in per_model:
        per_model[compiled] = StaticStep(model, compiled=compiled)
    return per_model[compiled]
