"""Exact toy denoisers with known conditionals, for tests, benchmarks and documentation.

``MarkovOracle`` is the true denoiser of a first-order Markov chain over a small vocabulary:
given any pattern of revealed tokens it returns the exact conditional of every position, which
depends only on the nearest revealed position on each side that the position can see
(block-causal visibility as in ``Denoiser``). Any correct sampler run with temperature 1 and no
nucleus must therefore produce samples distributed as the chain, whatever its block sizes and
unmasking order. ``UnigramOracle`` is the i.i.d. special case (constant logits, fast at any length).

At a revealed position the oracles return the conditional given the OTHER revealed positions
(leave-one-out); samplers only read masked positions.

Both use a "recompute" cache: it stores the appended tokens, and ``cached_logits`` recomputes the
logits over prefix + block, which is exactly the block-causal semantics of the KV cache.
The MASK token is the last id; its logit is 0 (samplers exclude it).
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor


def _float64(values: Any) -> Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


@attrs.define(eq=False)  # holds tensors: compare their values, not ==
class RecomputeCache:
    tokens: Tensor
    filled: int = 0


class _RecomputeCached:
    """The cache half of Denoiser for oracles whose ``logits`` are cheap to recompute."""

    mask_id: int

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        raise NotImplementedError

    def new_cache(self, batch_size: int, length: int) -> RecomputeCache:
        return RecomputeCache(torch.full((batch_size, length), self.mask_id, dtype=torch.long))

    def cached_logits(self, block: Tensor, *, cache: RecomputeCache, start: int) -> Tensor:
        if start != cache.filled:
            raise ValueError(f"start must equal the cached length (got {start}, cached {cache.filled})")
        prefix = cache.tokens[:, :start].to(block.device)
        return self.logits(torch.cat([prefix, block], dim=1), block_size=None)[:, start:]

    def append_to_cache(self, block: Tensor, *, cache: RecomputeCache, start: int) -> None:
        if start != cache.filled:
            raise ValueError(
                f"blocks must be appended left to right, no gaps (got start {start}, cached {cache.filled})"
            )
        cache.tokens[:, start : start + block.shape[1]] = block.cpu()
        cache.filled = start + block.shape[1]


@attrs.frozen(eq=False)
class UnigramOracle(_RecomputeCached):
    """Every position is i.i.d. ``probs`` (vocab-1,), whatever the context."""

    probs: Tensor = attrs.field(converter=_float64)

    @property
    def vocab_size(self) -> int:
        return len(self.probs) + 1

    @property
    def mask_id(self) -> int:
        return len(self.probs)

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        row = torch.cat([torch.log(self.probs / self.probs.sum()), torch.zeros(1, dtype=torch.float64)])
        return row.float().to(tokens.device).expand(*tokens.shape, -1).clone()


@attrs.frozen(eq=False)
class MarkovOracle(_RecomputeCached):
    """initial (vocab-1,) start distribution; transition (vocab-1, vocab-1), rows sum to 1."""

    initial: Tensor = attrs.field(converter=_float64)
    transition: Tensor = attrs.field(converter=_float64)

    @staticmethod
    def unigram(probs: Any) -> UnigramOracle:
        return UnigramOracle(probs)

    @property
    def vocab_size(self) -> int:
        return len(self.initial) + 1

    @property
    def mask_id(self) -> int:
        return len(self.initial)

    def marginals(self, length: int) -> Tensor:
        """(length, vocab-1): the chain's marginal distribution of each position."""
        rows = [self.initial]
        for _ in range(length - 1):
            rows.append(rows[-1] @ self.transition)
        return torch.stack(rows)

    def _powers(self, length: int) -> Tensor:
        powers = [torch.eye(len(self.initial), dtype=torch.float64)]
        for _ in range(length):
            powers.append(powers[-1] @ self.transition)
        return torch.stack(powers)

    def logits(self, tokens: Tensor, *, block_size: int | None = None) -> Tensor:
        """p(x_i = v | nearest visible revealed x_a left, x_b right) ∝ T^(i-a)[x_a, v] T^(b-i)[v, x_b]."""
        batch, length = tokens.shape
        position = torch.arange(length)
        block = position // (block_size or length)
        visible = block[None, :] <= block[:, None]  # (query, key)
        seen = visible[None] & (tokens != self.mask_id).cpu()[:, None, :]
        key = position[None, None, :]
        left = torch.where(seen & (key < position[None, :, None]), key, -1).max(dim=2).values
        right = torch.where(seen & (key > position[None, :, None]), key, length).min(dim=2).values
        powers = self._powers(length)
        clean = tokens.cpu().clamp(max=self.mask_id - 1)
        rows = torch.arange(batch)[:, None]
        from_left = powers[(position[None] - left).clamp(max=length), clean[rows, left.clamp(min=0)]]
        from_left = torch.where((left >= 0)[..., None], from_left, self.marginals(length)[None])
        to_right = powers[
            (right - position[None]).clamp(max=length), :, clean[rows, right.clamp(max=length - 1)]
        ]
        to_right = torch.where((right < length)[..., None], to_right, torch.ones_like(to_right))
        probs = from_left * to_right
        logits = torch.log(probs / probs.sum(-1, keepdim=True)).float()
        return torch.cat([logits, torch.zeros(batch, length, 1)], dim=-1).to(tokens.device)
