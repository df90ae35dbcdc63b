"""Nucleus (top-p) filtering with BD3-LM's rule.

Sort the probabilities in descending order and keep a token while the cumulative probability up
to and including it is <= p; the most probable token is ALWAYS kept (so a peaked distribution
whose top token alone exceeds p still has one candidate). Note the boundary: the token that
crosses p is dropped, unlike the "smallest set with mass >= p" definition of Holtzman et al.
With ``top_p >= 1`` nothing is filtered (rounding in the cumulative sum could otherwise drop
tail tokens whose cumulative probability lands a hair above 1).

Speed: a full sort of a 50K vocabulary costs milliseconds per position, more than a cached
forward of a small model. The kept set only needs the sorted prefix up to the token whose
cumulative probability crosses p, so partial sorts (``topk``) of growing size are tried first
and the full sort is the fallback; the result is the same set (up to the order of exactly tied
probabilities, which either way is arbitrary).
"""

from __future__ import annotations

import torch
from torch import Tensor

# partial sorts tried before the full one: the nucleus of a trained LM is usually small
PARTIAL_SORT_SIZES = (64, 1024)


def nucleus_keep(probs: Tensor, top_p: float) -> Tensor:
    """(..., vocab) probabilities -> (..., vocab) bool: the tokens BD3-LM's nucleus keeps.

    Arithmetic in float64 whatever the input dtype.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (got {top_p!r})")
    if top_p >= 1.0:
        return torch.ones_like(probs, dtype=torch.bool)
    probs = probs.double()
    vocab = probs.shape[-1]
    for size in (*(k for k in PARTIAL_SORT_SIZES if k < vocab), vocab):
        if size < vocab:
            ordered, order = torch.topk(probs, size, dim=-1, sorted=True)
        else:
            ordered, order = torch.sort(probs, dim=-1, descending=True)
        cumulative = ordered.cumsum(dim=-1)
        if size == vocab or bool((cumulative[..., -1] > top_p).all()):
            break
    keep_sorted = cumulative <= top_p
    keep_sorted[..., 0] = True
    return torch.zeros(probs.shape, dtype=torch.bool, device=probs.device).scatter_(-1, order, keep_sorted)


def nucleus_filter(probs: Tensor, top_p: float) -> Tensor:
    """(..., vocab) probabilities -> float64 probabilities renormalised over the nucleus."""
    kept = probs.double() * nucleus_keep(probs, top_p)
    return kept / kept.sum(dim=-1, keepdim=True)
