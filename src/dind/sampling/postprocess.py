"""What happens to finished samples: BD3-LM's stop at EOS, as a function over a result.

(BD3-LM's other post-processing, redrawing degenerate low-entropy rows, judges samples by a
statistic, so it lives with the statistics: ``dind.eval.redraw_low_entropy``.)
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.sampling.multistage import frozen_prefix_length
from dind.sampling.trace import GenerationResult


def truncate_at_eos(result: GenerationResult, eos_id: int) -> GenerationResult:
    """``result`` with every position after each row's first generated ``eos_id`` set to EOS and
    counted as padding (``result.lengths``: the first EOS's position + 1, or the full length when
    there is none). Frozen positions (BOS, prompt: +inf scores) are never an end: BOS shares
    GPT-2's EOS id. Apply it last, after any redraws."""
    if isinstance(eos_id, bool) or not isinstance(eos_id, int) or not 0 <= eos_id:
        raise ValueError(f"eos_id must be a token id (an int >= 0) (got {eos_id!r})")
    tokens, lengths = truncate_after_eos(result.tokens, eos_id, frozen_prefix_length(result.scores))
    return attrs.evolve(result, tokens=tokens, lengths=torch.minimum(lengths, result.lengths))


def truncate_after_eos(tokens: Tensor, eos_id: int, prompt_length: int) -> tuple[Tensor, Tensor]:
    """Set every position after each row's first generated EOS to EOS.

    Only positions >= ``prompt_length`` count (BOS shares GPT-2's EOS id). Returns the new tokens
    and (batch,) lengths: the first EOS's position + 1, or the full length when there is none.
    """
    length = tokens.shape[1]
    positions = torch.arange(length, device=tokens.device)
    is_eos = (tokens == eos_id) & (positions >= prompt_length)[None, :]
    first = torch.where(is_eos, positions[None, :], length).min(dim=1).values
    lengths = torch.clamp(first + 1, max=length)
    padded = tokens.masked_fill(positions[None, :] >= lengths[:, None], eos_id)
    return padded, lengths
