"""``dind eval``: score a samples file (JSON Lines) with a judge; print and write a JSON report."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from dind.cli.support import add_judge_arguments, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "samples", type=Path, help='JSON Lines file, one {"text": ...} or {"tokens": [...]} per line'
    )
    add_judge_arguments(parser)
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="the generating model's dind tokenizer, decodes 'tokens' fields "
        "(default: bytes if every id fits in 0..256, else gpt2)",
    )
    parser.add_argument(
        "--use-text", action="store_true", help="score the 'text' fields even where 'tokens' are present"
    )
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="truncate the judge's retokenised ids to the generating model's length (e.g. 1024)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON report path (default: SAMPLES with suffix .genppl.json)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out report")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _infer_tokenizer(tokens: list[list[int]] | None) -> str:
    if tokens is None or max((max(row) for row in tokens if row), default=0) > 256:
        return "gpt2"
    return "bytes"


def run(args: argparse.Namespace) -> int:
    from dind.data.tokenizers import TOKENIZERS
    from dind.eval.byte_judge import is_byte_judge
    from dind.eval.judge import load_judge
    from dind.eval.report import check_token_ids, decode_for_judge, evaluate, format_summary, read_samples
    from dind.outputs import atomic_write_text, check_output

    out = check_output(
        args.out or args.samples.with_suffix(".genppl.json"), overwrite=args.overwrite, option="--out"
    )
    _, raw_tokens = read_samples(args.samples, decode=lambda ids: "")  # checked before the judge loads
    name = args.tokenizer or _infer_tokenizer(raw_tokens)
    tokenizer = TOKENIZERS.build(name)
    if raw_tokens is not None and not args.use_text:
        check_token_ids(raw_tokens, tokenizer, name)
    judge = load_judge(
        args.judge,
        device=args.judge_device,
        batch_size=args.judge_batch_size,
        window=args.window,
        stride=args.stride,
    )
    decode = functools.partial(
        decode_for_judge, tokenizer.decode, eos_id=tokenizer.eos_id, eos_text=judge.tokenizer.eos_token
    )
    texts, tokens = read_samples(args.samples, decode=None if args.use_text else decode)
    if not texts:
        raise ValueError(f"samples must hold at least one sample (got an empty file {args.samples})")
    exact = name == "bytes" and is_byte_judge(judge) and not args.use_text
    result = evaluate(
        judge, texts, tokens=tokens, max_length=args.max_length, progress=args.progress, byte_tokens=exact
    )
    result = {"samples": str(args.samples), "judge": str(args.judge), "tokenizer": name, **result}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(format_summary(result))
    print(f"report written to {out}")
    return 0
