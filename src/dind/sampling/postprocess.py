"""What happens to finished samples: EOS truncation and BD3-LM's low-entropy rejection test."""

from __future__ import annotations

import torch
from torch import Tensor

from dind.eval.entropy import batch_unigram_entropy

REJECTION_WINDOW = 256
REJECTION_MIN_ENTROPY = 4.0


def low_entropy_rows(
    tokens: Tensor, *, window: int = REJECTION_WINDOW, min_entropy: float = REJECTION_MIN_ENTROPY
) -> Tensor:
    """(batch, length) -> (batch,) bool: rows BD3-LM would discard as degenerate.

    Once length > ``window``, a row is degenerate when the unigram entropy (nats) of its last
    ``window`` tokens is below ``min_entropy``. Shorter sequences are never rejected. Rejecting
    and redrawing such samples lowers (flatters) the reported Gen PPL.
    """
    if tokens.shape[1] <= window:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    entropy = batch_unigram_entropy(tokens[:, -window:].cpu())
    return (entropy < min_entropy).to(tokens.device)


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
