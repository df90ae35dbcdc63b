"""The forwards a sampler uses besides ``DiT.logits``: features (the output layer left out, run
later at the positions sampled only), a cache append fused with the next block's forward, and the
partial forward of the skeleton refine cache. A mixin of ``DiT`` (it uses the DiT's internals:
``_forward``, ``_cached``, ``_cached_inputs``, ``_conditioning``, ``_rotary``, ``_masked``), kept
apart so each module stays about one concept."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dind.attention import AttentionMask, KVCache, block_causal_mask
from dind.models.layers import Attend


class SamplingForwards:
    """Mixed into ``DiT``; see the module docstring."""

    backbone: Any
    config: Any
    attention: Any

    def features(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        """``logits`` without the output layer: (batch, length, hidden_dim) in the compute dtype.
        ``project(features[where])`` equals ``logits(tokens)[where]`` up to fp32 round-off."""
        check_tokens("tokens", tokens)
        length = tokens.shape[1]
        mask = None if block_size is None or block_size >= length else block_causal_mask(length, block_size)
        positions = torch.arange(length, device=tokens.device)
        conditioning = self._conditioning(None, tokens)
        return self._forward(tokens, positions, conditioning, self._masked(mask), project=False)

    @torch.no_grad()
    def cached_features(self, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        """``cached_logits`` without the output layer: (batch, width, hidden_dim)."""
        check_tokens("block", block)
        cache.check_block(start, block.shape[1], block.shape[0])
        inputs = self._cached_inputs(block, start, None)
        return self._forward(block, *inputs, self._cached(cache, start), project=False)

    @torch.no_grad()
    def append_and_features(self, finished: Tensor, block: Tensor, *, cache: KVCache, start: int) -> Tensor:
        """``append_to_cache`` of the finished blocks at ``start`` (one or more blocks of the block's
        width, appended block by block), then ``cached_features(block)`` right after them, in one
        forward with the block-causal rule (blocks of ``block``'s width, aligned at ``start``): each
        position attends to the cache, to earlier blocks and to its own block. The finished keys/
        values are cached; returns the block's features."""
        check_tokens("finished", finished)
        check_tokens("block", block)
        done, width = finished.shape[1], block.shape[1]
        tokens = torch.cat([finished, block], dim=1)
        cache.check_block(start, done + width, tokens.shape[0])
        positions, conditioning = self._cached_inputs(tokens, start, None)
        if done % width:
            raise ValueError(f"finished must be whole blocks of the block's width (got {done}, {width})")

        def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
            return (key < start) | ((key - start) // width <= query // width)

        mask = AttentionMask(mask_mod, batch=None, query_length=done + width, key_length=start + done + width)

        def for_layer(index: int) -> Attend:
            def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
                keys, values = cache.write(index, start, key, value)  # the block's are overwritten later
                return self.attention(query, keys, values, mask)

            return attend

        features = self._forward(tokens, positions, conditioning, for_layer, project=False)
        cache.advance(done)
        return features[:, done:]

    @torch.no_grad()
    def partial_features(self, tokens: Tensor, where: Tensor, *, cache: KVCache) -> Tensor:
        """Features (n, hidden_dim) at the True positions of ``where`` (batch, length), row-major,
        from a full-attention forward that recomputes only those positions: each layer writes their
        fresh keys/values into ``cache`` (which holds every position's, from an earlier
        ``cached_features(tokens, cache=cache, start=0)``) and attends over all of it. Positions
        not recomputed keep their earlier keys/values: an approximation (a skeleton cache) unless
        nothing else changed since."""
        batch, length = tokens.shape
        counts = where.sum(dim=1)
        width = max(int(counts.max()), 1)
        # each row's selected positions first, in order; short rows repeat their first one
        order = torch.argsort((~where).to(torch.int8), dim=1, stable=True)[:, :width]
        valid = torch.arange(width, device=tokens.device)[None, :] < counts[:, None]
        positions = torch.where(valid, order, order[:, :1])
        x = self.backbone.vocab_embed(tokens.gather(1, positions))
        cos, sin = self._rotary(positions)
        cos, sin = cos[:, None], sin[:, None]  # (batch, 1 head, width, head_dim)
        conditioning = self._conditioning(None, tokens)
        heads, head_dim = self.config.n_heads, self.config.head_dim
        index = positions[:, None, :, None].expand(batch, heads, width, head_dim)

        def attend_for(layer: int) -> Attend:
            def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
                keys, values = cache.keys[layer], cache.values[layer]
                keys.scatter_(2, index, key.to(keys.dtype))
                values.scatter_(2, index, value.to(values.dtype))
                return self.attention(query, keys.to(query.dtype), values.to(query.dtype), None)

            return attend

        for layer_index, layer in enumerate(self.backbone.blocks):
            x = layer(x, conditioning, cos, sin, attend_for(layer_index))
        return x[valid]

    def project_features(self, features: Tensor) -> Tensor:
        """(..., hidden_dim) features -> (..., vocab) fp32 logits: the output layer (final norm,
        adaLN shift/scale of the sampling conditioning, linear) at those positions only. The DiT's
        ``project`` (defined on the class whose ``logits`` it matches: see
        ``dind.models.protocol.projects_consistently``)."""
        hidden = features.shape[-1]
        flat = features.reshape(1, -1, hidden)
        conditioning = self._conditioning(None, torch.zeros(1, 1, dtype=torch.long, device=features.device))
        logits = self.backbone.output_layer(flat, conditioning).float()
        return logits.reshape(*features.shape[:-1], logits.shape[-1])


def check_tokens(name: str, tokens: Tensor) -> None:
    if tokens.dim() != 2 or tokens.dtype != torch.long or tokens.shape[1] < 1:
        raise ValueError(
            f"{name} must be a non-empty (batch, length) long tensor (got shape "
            f"{tuple(tokens.shape)}, dtype {tokens.dtype})"
        )
