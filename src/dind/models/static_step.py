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
(tests/sampling/test_static_step.py checks both). With bf16 weights the compiled step's GEMM
kernels (inductor's) round differently from the eager ones, so its samples can differ in a few
tokens: equally valid draws, not the same ones.

``compiled=True`` wraps the step in ``torch.compile``: on CPU inductor with frozen weights and
max-autotune (its small-M GEMM kernels read the weights about twice as fast as the eager matmuls);
on CUDA mode "reduce-overhead" (CUDA graphs; the cache buffers are static addresses). A compiled
append runs the full step and drops the logits: one graph instead of two (the first call compiles,
~30-60 s on CPU). ``static_step(model, compiled=...)`` returns one wrapper per (model, mode), so
graphs and the preallocated cache are reused across ``generate`` calls.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import Tensor

from dind.attention import AttentionMask, KVCache
from dind.errors import UserError
from dind.models.dit import DiT, _check_tokens
from dind.models.folded import FoldedDiT, fingerprint

STEP_MODES = ("dynamic", "static", "compiled")
# inductor options for the CPU step: weights frozen as constants (packed for its GEMM templates)
CPU_COMPILE_OPTIONS = {"freezing": True, "max_autotune": True}
# ... and for the CUDA step: CUDA graphs (what torch.compile's mode "reduce-overhead" sets)
CUDA_COMPILE_OPTIONS = {"triton.cudagraphs": True}


def check_step_mode(step_mode: object) -> str:
    """``step_mode`` must be one of STEP_MODES; returns it."""
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {list(STEP_MODES)} (got {step_mode!r})")
    return step_mode  # type: ignore[return-value]


def attend_prefix(query: Tensor, keys: Tensor, values: Tensor, end: Tensor) -> Tensor:
    """SDPA of ``query`` (batch, heads, width, head_dim) over keys/values [0, end) of the cache
    buffers (batch, heads, cache length, head_dim); ``end`` a 1-element long tensor."""
    length = int(end)
    keys, values = keys.narrow(2, 0, length), values.narrow(2, 0, length)
    if keys.dtype != query.dtype:
        keys, values = keys.to(query.dtype), values.to(query.dtype)
    return F.scaled_dot_product_attention(query, keys, values)


# the same as an op opaque to torch.compile, so the graph around it keeps static shapes (a plain
# dispatcher op: torch.library.custom_op's wrapper costs ~0.1 ms a call, a sixth of the step).
# Defined once per process (a reloaded module re-points the implementation, nothing else).
if not hasattr(torch.ops.dind, "prefix_attention"):
    torch.library.define(
        "dind::prefix_attention", "(Tensor query, Tensor keys, Tensor values, Tensor end) -> Tensor"
    )

    @torch.library.register_fake("dind::prefix_attention")
    def _(query: Tensor, keys: Tensor, values: Tensor, end: Tensor) -> Tensor:
        return torch.empty_like(query)


torch.library.impl("dind::prefix_attention", "CompositeExplicitAutograd", attend_prefix)
prefix_attention = torch.ops.dind.prefix_attention


def _visible_below(limit: Tensor):
    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return key < limit

    return mask_mod


class StaticStep:
    """A ``Denoiser`` over a DiT whose cached step and cache append have static shapes.

    ``compiled``: wrap the step in ``torch.compile`` (see the module docstring). ``full_length``:
    attend over the whole cache length with a mask (True), or over exactly the filled prefix
    (False); None picks True on CUDA (a CUDA graph needs it), False elsewhere. ``logits``
    (uncached and global forwards) is the DiT's own. ``new_cache`` hands out one preallocated
    cache per (batch, length, dtype), reset, so a compiled step always sees the same buffers; it
    also refreshes the folded weights (and drops compiled graphs) when the DiT's weights changed."""

    def __init__(self, model: DiT, *, compiled: bool = False, full_length: bool | None = None):
        if not isinstance(model, DiT):
            raise ValueError(
                f"the static step needs a dind DiT (got {type(model).__name__}); use step_mode='dynamic'"
            )
        self.model = model
        self.compiled = compiled
        self._full_length = full_length  # None: by the device, decided again when weights move
        self._caches: dict[tuple[int, int, torch.dtype], KVCache] = {}
        self._fingerprint: tuple | None = None
        self._refresh()

    def __repr__(self) -> str:
        return (
            f"StaticStep({type(self.model).__name__}, compiled={self.compiled}, "
            f"full_length={self.full_length})"
        )

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
        self._refresh()
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
        # compiled: the full step (one graph); eager: stop after the last keys/values
        self._step(block, positions, cache.keys, cache.values, self.compiled)
        cache.advance(block.shape[1])

    def _refresh(self) -> None:
        """(Re)build the folded weights and the step when the DiT's weights or the compute dtype
        (autocast on or off: the reference computes the modulation in it) changed, or on first use."""
        current = (fingerprint(self.model), self.model._compute_dtype())
        if current == self._fingerprint:
            return
        with torch.no_grad():
            self._folded = FoldedDiT(self.model)
        self._caches.clear()  # the weights may have moved device or dtype
        device = self.model.backbone.vocab_embed.embedding.device
        self.full_length = device.type == "cuda" if self._full_length is None else self._full_length
        self._step = _compile(_fresh(self._eager_step), device) if self.compiled else self._eager_step
        self._fingerprint = current

    def _positions(self, block: Tensor, cache: KVCache, start: int) -> Tensor:
        _check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        return torch.arange(start, start + block.shape[1], device=block.device)

    def _eager_step(
        self, block: Tensor, positions: Tensor, keys: list[Tensor], values: list[Tensor], logits: bool
    ) -> Tensor | None:
        """The step over fixed shapes: writes the block's keys/values at ``positions`` in every
        layer; returns (batch, width, vocab) fp32 logits (None when ``logits`` is False)."""
        if self.full_length:
            mask = AttentionMask(
                _visible_below(positions[-1] + 1),
                batch=None,
                query_length=block.shape[1],
                key_length=keys[0].shape[2],
            )
            attention = self.model.attention

            def attend_all(index: int, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
                _write(keys[index], values[index], positions, key, value)
                dtype = query.dtype
                return attention(query, keys[index].to(dtype), values[index].to(dtype), mask)

            return self._folded.step(block, positions, attend_all, logits=logits)

        end = positions[-1:] + 1
        # eager: the plain function (an op call costs a dispatch per layer)
        prefix = prefix_attention if torch.compiler.is_compiling() else attend_prefix

        def attend_cached(index: int, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
            _write(keys[index], values[index], positions, key, value)
            return prefix(query, keys[index], values[index], end)

        return self._folded.step(block, positions, attend_cached, logits=logits)


def _fresh(method):
    """The bound method with a code object of its own. torch.compile keeps compiled graphs per
    code object, and a graph with frozen weights must never be reused once they changed."""
    function = method.__func__
    copy = types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    return types.MethodType(copy, method.__self__)


def _guards_to_keep(entries) -> list[bool]:
    """Drop dynamo's guards on nn.Module attributes and on module globals (a quarter of the CPU
    step's time otherwise); the input tensors' guards (shape, dtype, device) stay. Weights are
    frozen into the graph anyway and ``StaticStep._refresh`` recompiles when they change; the
    module globals the step reads (torch functions, dind helpers) are assumed not to be rebound."""
    modules = torch.compiler.skip_guard_on_all_nn_modules_unsafe(entries)
    globals_ = torch.compiler.skip_guard_on_globals_unsafe(entries)
    return [module and global_ for module, global_ in zip(modules, globals_, strict=True)]


class CompileError(UserError, RuntimeError):
    """``step_mode="compiled"`` could not compile the decode step (no C++ compiler, no Triton...)."""


def _compile(step, device: torch.device):
    """``torch.compile`` the step: CUDA graphs on CUDA; on CPU inductor with frozen weights and
    max-autotune GEMMs. The inductor options are patched around every call (passed only as
    ``torch.compile(options=...)``, freezing was silently not applied) and only the guards
    ``_guards_to_keep`` keeps are evaluated. A failed compile is a ``CompileError``
    with one line saying what failed and what to use instead."""
    if device.type == "cuda":  # CUDA graphs (= mode "reduce-overhead", which excludes options)
        options = CUDA_COMPILE_OPTIONS
        compiled = torch.compile(
            step, options={**options, "guard_filter_fn": _guards_to_keep}, fullgraph=True, dynamic=False
        )
    else:
        options = CPU_COMPILE_OPTIONS
        compiled = torch.compile(
            step, options={"guard_filter_fn": _guards_to_keep}, fullgraph=True, dynamic=False
        )

    compiled_shapes: set[tuple] = set()

    def run(block, positions, keys, values, logits):
        # the options matter only while compiling, i.e. for a new input signature; the patch
        # costs ~60 us, so later calls skip it (a compile it missed would only be slower)
        signature = (block.shape, block.device, keys[0].shape, keys[0].dtype, logits)
        try:
            if signature in compiled_shapes:
                return compiled(block, positions, keys, values, logits)
            with torch._inductor.config.patch(options):
                out = compiled(block, positions, keys, values, logits)
            compiled_shapes.add(signature)
            return out
        except (torch._dynamo.exc.BackendCompilerFailed, torch._inductor.exc.InductorError) as error:
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise CompileError(
                f"step_mode='compiled' could not compile the decode step on {device.type} ({first.strip()}); "
                "torch.compile needs a working C++ compiler on CPU and Triton on CUDA; "
                "step_mode='static' gives the same samples without compiling"
            ) from error

    return run


def _write(keys: Tensor, values: Tensor, positions: Tensor, key: Tensor, value: Tensor) -> None:
    keys.index_copy_(2, positions, key.to(keys.dtype))
    values.index_copy_(2, positions, value.to(values.dtype))


def static_step(model: DiT, *, compiled: bool = False) -> StaticStep:
    """The model's StaticStep (one per model and ``compiled``: graphs and caches are reused)."""
    if isinstance(model, StaticStep):
        model = model.model
    per_model = model.__dict__.setdefault("_dind_static_steps", {})  # dies with the model
    if compiled not in per_model:
        per_model[compiled] = StaticStep(model, compiled=compiled)
    return per_model[compiled]
