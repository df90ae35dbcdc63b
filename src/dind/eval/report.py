"""Samples files and the evaluation report shared by ``dind eval`` and ``dind sweep``.

A samples file is JSON Lines, one sample per line: ``{"text": ...}`` and/or ``{"tokens": [...]}``
(the generating model's token ids, as ``dind sample`` writes them). Tokens, when present, are
decoded with the generating model's tokenizer, each EOS written as the judge's EOS string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dind.eval.entropy import text_stats
from dind.eval.genppl import Judge


def decode_for_judge(
    decode: Callable[[list[int]], str], ids: Sequence[int], *, eos_id: int, eos_text: str | None
) -> str:
    """Text of a sample with each EOS written as the judge's EOS string (e.g. "<|endoftext|>").

    dind's tokenizers drop EOS when decoding; the judge should still see document boundaries
    (and a leading BOS = EOS), as in BD3-LM's protocol, where EOS targets are then not scored.
    """
    pieces: list[list[int]] = [[]]
    for token in ids:
        if int(token) == eos_id:
            pieces.append([])
        else:
            pieces[-1].append(int(token))
    return (eos_text or "").join(decode(piece) for piece in pieces)


def write_samples(
    path: str | Path, texts: Sequence[str], tokens: Sequence[Sequence[int]] | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for i, text in enumerate(texts):
            record: dict[str, Any] = {"text": text}
            if tokens is not None:
                record["tokens"] = [int(t) for t in tokens[i]]
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read_samples(
    path: str | Path, *, decode: Callable[[list[int]], str] | None = None
) -> tuple[list[str], list[list[int]] | None]:
    """Texts of every sample, and their model tokens when every sample has them (else None).

    With ``decode``, a sample's "tokens" win over its "text" (decoding them with
    ``decode_for_judge`` keeps the document boundaries that a decoded "text" has lost).
    """
    texts: list[str] = []
    tokens: list[list[int]] = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"samples line {number} of {path} is not valid JSON ({error.msg} at column {error.colno})"
                ) from None
            if not isinstance(record, dict):
                got = line.strip()[:40]
                raise ValueError(f"samples line {number} of {path} must be a JSON object (got {got!r})")
            if "tokens" in record:
                tokens.append(_token_ids(record["tokens"], number, path))
            if "tokens" in record and decode is not None:
                texts.append(decode(tokens[-1]))
            elif "text" in record:
                texts.append(str(record["text"]))
            else:
                need = "a 'text' field" if decode is None else "a 'text' or a 'tokens' field"
                raise ValueError(
                    f"samples line {number} of {path} must have {need} (got keys {sorted(record)})"
                )
    return texts, tokens if len(tokens) == len(texts) else None


def _token_ids(value: Any, number: int, path: str | Path) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise ValueError(f"samples line {number} of {path}: 'tokens' must be a list of integer ids")
    return value


def check_token_ids(tokens: Sequence[Sequence[int]], tokenizer: Any, name: str) -> None:
    """Refuse ids the tokenizer does not have (negative, MASK, another vocabulary): never dropped.

    A gpt2 tokenizer given samples whose ids all fit in a byte tokenizer is refused as well
    (GPT-2 text of a few dozen tokens always uses ids above 256)."""
    for number, row in enumerate(tokens, start=1):
        bad = [t for t in row if not 0 <= t < tokenizer.vocab_size]
        if bad:
            what = " (the MASK id: a partly masked sample)" if bad[0] == tokenizer.mask_id else ""
            raise ValueError(
                f"sample {number}: token id {bad[0]} is outside the {name!r} tokenizer's ids "
                f"0..{tokenizer.vocab_size - 1}{what}; pass the generating model's --tokenizer"
            )
    total = sum(len(row) for row in tokens)
    if tokenizer.vocab_size > 257 and total >= 64 and max((max(r) for r in tokens if r), default=0) <= 256:
        raise ValueError(
            f"samples' token ids all fit in 0..256, which looks like the 'bytes' tokenizer, not {name!r} "
            "(pass --tokenizer bytes)"
        )


def evaluate(
    judge: Judge,
    texts: Sequence[str],
    *,
    tokens: Sequence[Sequence[int]] | None = None,
    max_length: int | None = None,
    progress: bool = False,
    byte_tokens: bool = False,
) -> dict[str, Any]:
    """Gen PPL, corpus PPL, unigram entropy and repeated-n-gram rates of ``texts``.

    Entropy and repetition are computed over the model's ``tokens`` when given (BD3-LM's
    convention), else over the judge's token ids. ``byte_tokens``: ``tokens`` are ``bytes``
    tokenizer ids and the judge is byte-level: they are scored id for id (no text round trip)
    and the entropy excludes the leading BOS.
    """
    from dind.eval.byte_judge import byte_judge_ids, is_byte_judge

    if byte_tokens and tokens is not None and is_byte_judge(judge):
        ids, entropy_ids = byte_judge_ids(tokens, max_length=max_length)
        tokens = entropy_ids
    else:
        ids = judge.tokenize(texts, max_length=max_length)
    report = judge.score_ids(ids, entropy_ids=tokens, progress=progress)
    stats = text_stats(tokens if tokens is not None else ids)
    stats.pop("unigram_entropy")  # already in the report, computed on the same ids
    return {
        **report.summary(),
        **stats,
        **judge.settings(),
        "max_length": max_length,
        "sample_ppl": list(report.sample_ppl),
        "sample_entropy": list(report.sample_entropy),
    }


def format_summary(result: dict[str, Any]) -> str:
    """One line per scalar of an ``evaluate`` result, for the terminal."""
    keys = (
        "gen_ppl",
        "corpus_ppl",
        "unigram_entropy",
        "repeated_2gram_rate",
        "repeated_4gram_rate",
        "num_samples",
        "num_scored_tokens",
    )
    width = max(len(key) for key in keys)
    lines = []
    for key in keys:
        value = result.get(key)
        lines.append(
            f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}"
        )
    return "\n".join(lines)
