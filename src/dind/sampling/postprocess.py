"""What happens to finished samples: BD3-LM's stop at EOS, as a function over a result.

(BD3-LM's other post-processing, redrawing degenerate low-entropy rows, judges samples by a
statistic, so it lives with the statistics: ``dind.eval.redraw_low_entropy``.)
"""

from __future__ import annotations

import attrs
import torch

from dind.sampling.multistage import frozen_prefix_length
from dind.sampling.stopping import truncate_after_eos
from dind.sampling.trace import GenerationResult


def truncate_at_eos(result: GenerationResult, eos_id: int) -> GenerationResult:
    """``result`` with every position after each row's first generated ``eos_id`` set to EOS and
    counted as padding (``result.lengths``: the first EOS's position + 1, or the full length when
    there is none; ``result.stops``: "eos" for a row that now ends at an EOS). Frozen positions
    (BOS, prompt: +inf scores) are never an end: BOS shares GPT-2's EOS id. Apply it last, after
    any redraws."""
    if isinstance(eos_id, bool) or not isinstance(eos_id, int) or not 0 <= eos_id:
        raise ValueError(f"eos_id must be a token id (an int >= 0) (got {eos_id!r})")
    prompt_length = frozen_prefix_length(result.scores)
    tokens, lengths = truncate_after_eos(result.tokens, eos_id, prompt_length)
    lengths = torch.minimum(lengths, result.lengths)
    last = result.tokens.gather(1, (lengths - 1).clamp_min(0)[:, None])[:, 0]
    ends_at_eos = (last == eos_id) & (lengths > prompt_length)
    stops = tuple(
        "eos" if found and why == "length" else why
        for found, why in zip(ends_at_eos.tolist(), result.stops, strict=True)
    )
    return attrs.evolve(result, tokens=tokens, lengths=lengths, stops=stops)
