"""Byte-level judges: a causal LM over the 256 bytes plus one BOS/EOS id (256).

dind's ``bytes`` tokenizer uses the same ids (bytes 0..255, EOS 256; MASK 257 is the model's
own), so a byte generator's samples are scored id for id, with no text round trip: no
replacement characters for a sample that is not valid UTF-8, no whitespace lost around EOS.
A judge directory declares itself byte-level with ``"dind_tokenizer": "bytes"`` in its
``config.json`` (``dind.eval.judge_training`` writes it); ``load_judge`` then uses
``ByteJudgeTokenizer`` instead of ``AutoTokenizer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BYTE_BOS = 256
BYTE_JUDGE_VOCAB = 257


class ByteJudgeTokenizer:
    """Text -> [BOS] + UTF-8 bytes (the ``transformers`` call shape ``Judge.tokenize`` uses)."""

    eos_token_id = BYTE_BOS
    bos_token_id = BYTE_BOS
    eos_token = None  # EOS has no text form: byte judges take model ids directly (judge_ids)

    def __call__(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return {"input_ids": [[BYTE_BOS, *text.encode("utf-8")] for text in texts]}


def is_byte_judge(judge: Any) -> bool:
    return isinstance(getattr(judge, "tokenizer", None), ByteJudgeTokenizer)


def byte_judge_ids(
    tokens: Sequence[Sequence[int]], *, eos_id: int = BYTE_BOS, max_length: int | None = None
) -> tuple[list[list[int]], list[list[int]]]:
    """(judge ids, entropy ids) of byte-tokenizer samples, exactly, id for id.

    Judge ids: a leading BOS is kept (it is never a target) or added; EOS (``eos_id``) becomes
    the judge's EOS (not scored). Entropy ids: the sample without its leading BOS (BD3-LM's
    entropy is over generated tokens). ``max_length``: ids kept per sample, BOS included, as
    ``Judge.tokenize`` truncates. Any id outside 0..256 (MASK, another vocabulary) is an error
    naming the sample, never dropped.
    """
    judge_ids, entropy_ids = [], []
    for number, row in enumerate(tokens):
        row = [int(t) for t in row]
        bad = [t for t in row if not (0 <= t <= 255 or t == eos_id)]
        if bad:
            raise ValueError(
                f"sample {number}: tokens must be byte ids 0..255 or EOS {eos_id} for a byte-level judge "
                f"(got {bad[0]}; MASK or another tokenizer's ids?)"
            )
        row = [BYTE_BOS if t == eos_id else t for t in row]
        body = row[1:] if row and row[0] == BYTE_BOS else row
        ids = [BYTE_BOS, *body]
        if max_length is not None:
            ids = ids[:max_length]
        judge_ids.append(ids)
        entropy_ids.append(body)
    return judge_ids, entropy_ids
