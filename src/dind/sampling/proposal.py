"""Token proposal for one diffusion step: temperature, nucleus top-p, float64 Gumbel-argmax.

The proposal works on a flat list of positions (the masked positions of the active rows, or only
the ones the rule reveals), so a global block with few masked positions costs only those rows.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind import counter_rng
from dind.sampling.nucleus import nucleus_keep
from dind.validation import half_open_unit_interval, positive_number


@attrs.frozen
class ProposalOptions:
    """temperature > 0 divides the logits; top_p in (0, 1] is BD3-LM's nucleus (1 = off)."""

    temperature: float = attrs.field(default=1.0, converter=float, validator=positive_number)
    top_p: float = attrs.field(default=1.0, converter=float, validator=half_open_unit_interval)


def model_probs(logits: Tensor, mask_id: int) -> Tensor:
    """(..., vocab) logits -> fp32 softmax with the MASK token excluded (temperature 1, no nucleus).

    This is the denoiser's own distribution p_theta(x_i | x_t): what the confidence tracker is
    told (PAPER Eq. 5 scores the model's probability of the chosen token, not the sampling
    distribution's) and what the confidence-ordered unmasking rules rank by.
    """
    return torch.softmax(_without_mask(logits.float(), mask_id), dim=-1)


def _without_mask(logits: Tensor, mask_id: int) -> Tensor:
    """A copy of ``logits`` with the MASK logit at -inf (inputs are never modified)."""
    out = logits.clone()
    out[..., mask_id] = float("-inf")
    return out


def draw_gumbel(keys: Tensor, vocab: int) -> Tensor:
    """(positions,) int64 counter-RNG keys -> (positions, vocab) float64 Gumbel(0, 1) noise; line
    i depends only on ``keys[i]`` (``dind.counter_rng.gumbel``: always finite, u never 0 or 1)."""
    if keys.dim() != 1 or keys.dtype != torch.int64:
        raise ValueError(f"keys must be a (positions,) int64 tensor (got {keys.dtype} {tuple(keys.shape)})")
    return counter_rng.gumbel(keys, vocab)


def propose(logits: Tensor, gumbel: Tensor, *, mask_id: int, options: ProposalOptions) -> Tensor:
    """(positions, vocab) logits + (positions, vocab) float64 Gumbel noise -> (positions,) tokens.

    MASK logit -> -inf, logits / temperature, softmax and nucleus in float64, then Gumbel-argmax
    over the log-probabilities of the kept tokens. Never proposes MASK.
    """
    scaled = logits.double() / options.temperature  # a new tensor: safe to edit in place
    scaled[..., mask_id] = float("-inf")
    log_probs = torch.log_softmax(scaled, dim=-1)
    if options.top_p < 1.0:
        log_probs = log_probs.masked_fill(~nucleus_keep(log_probs.exp(), options.top_p), float("-inf"))
    return (log_probs + gumbel).argmax(dim=-1)
