"""Accounting of model calls for the trace.

Two conventions are reported per stage:
- ``nfe`` (BD3-LM's): per row, the denoising forwards that row needed, i.e. forwards made while
  the row still had masked positions in the block AND its block content changed since its last
  forward. Cache-append passes do not count; a block with nothing masked costs none. The block
  sampler counts these (it knows what changed).
- ``forward_passes`` (raw): every call into the model for the whole batch, cache appends
  included. ``CountingDenoiser`` counts these and the time spent inside the calls.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import torch
from torch import Tensor

from dind.models.protocol import Denoiser, projects_consistently


def _synchronize(tensor: Tensor | None) -> None:
    # asynchronous devices: wait for the kernels so the time lands inside the model call
    if tensor is not None and tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


@attrs.define
class CountingDenoiser:
    """Wraps a Denoiser; counts raw forward passes and the seconds spent inside them.

    It is itself a Denoiser. One instance per stage: the counters are the stage's figures.
    """

    model: Denoiser
    forward_passes: int = 0
    model_time_s: float = 0.0

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def mask_id(self) -> int:
        return self.model.mask_id

    def _timed(self, call, *args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        out = call(*args, **kwargs)
        _synchronize(out if isinstance(out, Tensor) else None)
        self.model_time_s += time.perf_counter() - begin
        self.forward_passes += 1
        return out

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        with torch.no_grad():
            return self._timed(self.model.logits, tokens, block_size=block_size)

    def new_cache(self, batch_size: int, length: int) -> Any:
        return self.model.new_cache(batch_size, length)

    def cached_logits(self, block: Tensor, *, cache: Any, start: int) -> Tensor:
        with torch.no_grad():
            return self._timed(self.model.cached_logits, block, cache=cache, start=start)

    def append_to_cache(self, block: Tensor, *, cache: Any, start: int) -> None:
        with torch.no_grad():
            self._timed(self.model.append_to_cache, block, cache=cache, start=start)

    # a FeatureDenoiser's forwards count as passes; projections only add their time

    @property
    def projects(self) -> bool:
        """Whether the wrapped model stops before its output layer (``FeatureDenoiser``)."""
        return projects_consistently(self.model)

    def features(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        with torch.no_grad():
            return self._timed(self.model.features, tokens, block_size=block_size)

    def cached_features(self, block: Tensor, *, cache: Any, start: int) -> Tensor:
        with torch.no_grad():
            return self._timed(self.model.cached_features, block, cache=cache, start=start)

    def append_and_features(self, finished: Tensor, block: Tensor, *, cache: Any, start: int) -> Tensor:
        """A cache append fused with the next block's forward: one pass."""
        with torch.no_grad():
            return self._timed(self.model.append_and_features, finished, block, cache=cache, start=start)

    def partial_features(self, tokens: Tensor, where: Tensor, *, cache: Any) -> Tensor:
        """A partial forward (``dind.sampling.refine_cache``): counted as a pass."""
        with torch.no_grad():
            return self._timed(self.model.partial_features, tokens, where, cache=cache)

    def project(self, features: Tensor) -> Tensor:
        begin = time.perf_counter()
        with torch.no_grad():
            logits = self.model.project(features)
        _synchronize(logits)
        self.model_time_s += time.perf_counter() - begin
        return logits
