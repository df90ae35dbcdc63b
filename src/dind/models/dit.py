"""The BD3-LM diffusion transformer (DiT), a ``Denoiser`` and ``FeatureDenoiser`` (the sampler
forwards: ``dind.models.sampling_forwards``). ``state_dict()`` is BD3-LM's checkpoint layout:
``backbone.*`` plus the ``sampling_eps_min`` / ``sampling_eps_max`` buffers. Blocks run under
whatever autocast the caller opened (BD3-LM uses bf16 on CUDA); LayerNorms run in fp32 and logits
are returned as fp32."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from dind.attention import ATTENTION_BACKENDS, AttentionBackend, AttentionMask, KVCache, block_causal_mask
from dind.attention.masks import check_block_sizes, training_mask
from dind.models import checkpoint
from dind.models.config import DiTConfig
from dind.models.initialization import Init, initialize
from dind.models.layers import Attend, DiTBlock, EmbeddingLayer, FinalLayer, TimestepEmbedder
from dind.models.rotary import Rotary
from dind.models.sampling_forwards import SamplingForwards, check_tokens


class Backbone(nn.Module):
    def __init__(self, config: DiTConfig):
        super().__init__()
        self.vocab_embed = EmbeddingLayer(config.vocab_size, config.hidden_dim)
        self.sigma_map = TimestepEmbedder(config.cond_dim)
        self.rotary_emb = Rotary(config.head_dim)
        self.blocks = nn.ModuleList(
            DiTBlock(config.hidden_dim, config.n_heads, config.cond_dim, config.dropout)
            for _ in range(config.n_blocks)
        )
        self.output_layer = FinalLayer(config.hidden_dim, config.vocab_size, config.cond_dim)


class DiT(
    nn.Module,
    SamplingForwards,
    PyTorchModelHubMixin,
    library_name="dind",
    tags=["bd3lm", "block-diffusion", "dind"],
):
    """The BD3-LM DiT. ``init``: "bd3lm" (adaLN and output layer zero, as BD3-LM trains from) or
    "random" (every weight random: non-trivial logits for tests and demos); parameters are drawn
    from ``generator`` (default: torch's global one). On the meta device nothing is initialised.

    ``model(tokens)`` is ``model.logits(tokens)``. Hugging Face: ``save_pretrained(dir)`` writes
    BD3-LM's repo format (config.json with ``auto_map`` + model.safetensors + a model card),
    ``DiT.from_pretrained(dir_or_hub_id)`` reads it, ``push_to_hub(repo_id)`` uploads it
    (huggingface_hub's ``PyTorchModelHubMixin``, with dind's own file format)."""

    def __init__(
        self,
        config: DiTConfig,
        *,
        generator: torch.Generator | None = None,
        init: Init = "bd3lm",
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.config = config
        self.attention: AttentionBackend = ATTENTION_BACKENDS.build(config.attn_backend)
        with torch.device("meta"):  # allocate once, on the target device, then initialise in place
            self.backbone = Backbone(config)
            self.register_buffer("sampling_eps_min", torch.tensor(1e-3), persistent=True)
            self.register_buffer("sampling_eps_max", torch.tensor(1.0), persistent=True)
        target = torch.device(device) if device is not None else torch.get_default_device()
        self.to_empty(device=target)
        if target.type != "meta":
            initialize(self, generator=generator, init=init)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def mask_id(self) -> int:
        return self.config.mask_token_id

    @property
    def model_length(self) -> int:  # the length it was trained on (config.json's model_length)
        return self.config.model_length

    def set_attention_backend(self, backend: str | AttentionBackend) -> None:
        """Switch the attention kernel (a name, also recorded in ``config.attn_backend``, or an
        object, which a config cannot name); weights are unchanged."""
        if isinstance(backend, str):
            self.attention = ATTENTION_BACKENDS.build(backend)
            self.config = attrs.evolve(self.config, attn_backend=backend)
        else:
            self.attention = backend

    def forward(
        self, tokens: Tensor, *, block_size: int | None = None, sigma: Tensor | None = None
    ) -> Tensor:
        """``model(tokens)``: the same as ``logits`` (full attention unless ``block_size`` is given)."""
        return self.logits(tokens, block_size=block_size, sigma=sigma)

    def logits(
        self,
        tokens: Tensor,
        *,
        block_size: int | None = None,
        sigma: Tensor | None = None,
        where: Tensor | None = None,
    ) -> Tensor:
        """(batch, length) long -> (batch, length, vocab) fp32. Block-causal attention
        (key // block_size <= query // block_size), or full bidirectional when block_size is None.
        ``where`` (batch, length) bool: the output layer runs only there and the result is
        ``logits[where]``, (n, vocab) in row-major order (what a loss over masked positions reads)."""
        check_tokens("tokens", tokens)
        length = tokens.shape[1]
        if block_size is not None and (
            isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
        ):
            raise ValueError(f"block_size must be a positive int or None (got {block_size!r})")
        mask = None if block_size is None or block_size >= length else block_causal_mask(length, block_size)
        positions = torch.arange(length, device=tokens.device)
        conditioning = self._conditioning(sigma, tokens)
        return self._forward(tokens, positions, conditioning, self._masked(mask), where=where)

    def training_logits(
        self,
        noisy: Tensor,
        clean: Tensor,
        block_sizes: int | Tensor,
        *,
        sigma: Tensor | None = None,
        masks: Any = None,
        where: Tensor | None = None,
    ) -> Tensor:
        """Noisy and clean (batch, length) long, block sizes an int or (batch,) long tensor (each divides
        length) -> (batch, length, vocab) fp32 logits of the noisy half of the vectorised forward over
        concat(noisy, clean) with the block-diffusion training mask; both halves use positions 0..L-1.
        ``masks``: a ``dind.attention.mask_cache.TrainingMaskCache`` to take the mask from (built
        once per block size and reused), or None to build it for this call. ``where`` (batch,
        length) bool: the output layer runs only at those noisy positions (forward and backward);
        returns ``logits[where]``, (n, vocab)."""
        check_tokens("noisy", noisy)
        if clean.shape != noisy.shape:
            raise ValueError(
                f"clean must have the noisy shape (got {tuple(clean.shape)}, {tuple(noisy.shape)})"
            )
        batch, length = noisy.shape
        sizes = check_block_sizes(length, block_sizes, batch=batch)
        mask = (
            training_mask(length, sizes.to(noisy.device))
            if masks is None
            else masks.get(length, sizes, noisy.device)
        )
        positions = torch.arange(length, device=noisy.device).repeat(2)
        tokens = torch.cat((noisy, clean), dim=1)
        conditioning = self._conditioning(sigma, noisy)
        return self._forward(tokens, positions, conditioning, self._masked(mask), keep=length, where=where)

    def new_cache(self, batch_size: int, length: int) -> KVCache:
        """An empty cache for ``length`` positions, in the autocast dtype when autocast is on."""
        config = self.config
        return KVCache(
            layers=config.n_blocks,
            batch_size=batch_size,
            heads=config.n_heads,
            length=length,
            head_dim=config.head_dim,
            dtype=self._compute_dtype(),
            device=self.backbone.vocab_embed.embedding.device,
        )

    @torch.no_grad()
    def cached_logits(
        self, block: Tensor, *, cache: KVCache, start: int, sigma: Tensor | None = None
    ) -> Tensor:
        """(batch, width) tokens at [start, start + width) -> (batch, width, vocab) fp32 logits, the
        block attending to the cached [0, start) and to itself. Leaves the cache's content unchanged."""
        check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        return self._forward(block, *self._cached_inputs(block, start, sigma), self._cached(cache, start))

    def project(self, features: Tensor) -> Tensor:  # here, beside logits (projects_consistently)
        return self.project_features(features)

    @torch.no_grad()
    def append_to_cache(
        self, block: Tensor, *, cache: KVCache, start: int, sigma: Tensor | None = None
    ) -> None:
        """Run the finished block once and store its keys/values at [start, start + width)."""
        check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        positions, conditioning = self._cached_inputs(block, start, sigma)
        x = self.backbone.vocab_embed(block)
        cos, sin = self._rotary(positions)
        blocks = self.backbone.blocks
        for index, layer in enumerate(blocks[:-1]):
            x = layer(x, conditioning, cos, sin, self._cached(cache, start)(index))
        # the last layer's output feeds nothing that is cached: its keys/values suffice
        _, key, value = blocks[-1].query_key_value(x, conditioning, cos, sin)
        cache.write(len(blocks) - 1, start, key, value)
        cache.advance(block.shape[1])

    # ---- Hugging Face hub (PyTorchModelHubMixin hooks; the files are BD3-LM's format) -------------

    def _save_pretrained(self, save_directory: Path) -> None:
        checkpoint.save_pretrained(self, save_directory)

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **options: Any,
    ) -> DiT:
        """A local BD3-LM-format directory or a hub id (``options``: hub download options such as
        ``revision``, or config fields that keep the weights' shapes). Checked as ``dind.load``."""
        return checkpoint.from_pretrained(
            cls, pretrained_model_name_or_path, device=device, dtype=dtype, **options
        )

    # ---- internals -----------------------------------------------------------------------------

    def _compute_dtype(self) -> torch.dtype:
        """The dtype the blocks' matmuls produce: autocast's when it is on, else the weights'."""
        parameter = self.backbone.vocab_embed.embedding
        device_type = parameter.device.type
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return parameter.dtype

    def _rotary(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos, sin (length, head_dim), computed in fp32 and cast once to the compute dtype."""
        dtype = self._compute_dtype()
        cos, sin = self.backbone.rotary_emb(positions)
        return cos.to(dtype), sin.to(dtype)

    def _conditioning(self, sigma: Tensor | None, tokens: Tensor) -> Tensor:
        """(batch, cond_dim): silu(sigma_map(sigma)); sigma is zero without time conditioning."""
        batch = tokens.shape[0]
        if sigma is not None and not self.config.time_conditioning:
            raise ValueError("sigma must be None when config.time_conditioning is False (got a tensor)")
        if sigma is None:
            sigma = torch.zeros(batch, device=tokens.device)
        elif sigma.shape != (batch,):
            raise ValueError(f"sigma must have shape (batch,) = ({batch},) (got {tuple(sigma.shape)})")
        return F.silu(self.backbone.sigma_map(sigma))

    def _cached_inputs(self, block: Tensor, start: int, sigma: Tensor | None) -> tuple[Tensor, Tensor]:
        positions = torch.arange(start, start + block.shape[1], device=block.device)
        return positions, self._conditioning(sigma, block)

    def _masked(self, mask: AttentionMask | None) -> Callable[[int], Attend]:
        return lambda index: lambda query, key, value: self.attention(query, key, value, mask)

    def _cached(self, cache: KVCache, start: int) -> Callable[[int], Attend]:
        def for_layer(index: int) -> Attend:
            def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
                keys, values = cache.write(index, start, key, value)
                return self.attention(query, keys, values, None)

            return attend

        return for_layer

    def _forward(
        self,
        tokens: Tensor,
        positions: Tensor,
        conditioning: Tensor,
        attend_for: Callable[[int], Attend],
        keep: int | None = None,
        project: bool = True,
        where: Tensor | None = None,
    ) -> Tensor:
        """Embed, run every block with ``attend_for(layer)``, then the output layer on the first
        ``keep`` positions (all when None), or only at ``where`` (batch, keep) bool, giving
        (n, vocab). Returns fp32 logits, or the last block's output (features) when ``project`` is
        False."""
        x = self.backbone.vocab_embed(tokens)
        cos, sin = self._rotary(positions)
        for index, layer in enumerate(self.backbone.blocks):
            x = layer(x, conditioning, cos, sin, attend_for(index))
        if keep is not None:
            x = x[:, :keep]
        if not project:
            return x
        if where is not None:
            if where.shape != x.shape[:2]:
                raise ValueError(
                    f"where must be (batch, length) = {tuple(x.shape[:2])} (got {tuple(where.shape)})"
                )
            rows = where.nonzero()[:, 0]
            return self.backbone.output_layer(x[where][:, None], conditioning[rows]).float()[:, 0]
        return self.backbone.output_layer(x, conditioning).float()
