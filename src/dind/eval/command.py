"""``dind eval``: score a samples file (JSON Lines) with a judge; print and write a JSON report."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The judge options shared by ``dind eval`` and ``dind sweep``."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        required=True,
        help="directory of a causal LM saved with save_pretrained (GPT-2 Large for Gen PPL)",
    )
    group.add_argument(
        "--judge-device", default=None, help="device of the judge (default: cuda if available)"
    )
    group.add_argument("--judge-batch-size", type=int, default=8, help="windows per judge forward pass")
    group.add_argument(
        "--window",
        type=int,
        default=None,
        help="judge window in tokens (default: min(1024, the judge's context size))",
    )
    group.add_argument("--stride", type=int, default=None, help="window stride (default: window // 2)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "samples", type=Path, help='JSON Lines file, one {"text": ...} or {"tokens": [...]} per line'
    )
    add_judge_arguments(parser)
    parser.add_argument(
        "--tokenizer",
        default="gpt2",
        help="the generating model's dind tokenizer, decodes 'tokens' fields (default: gpt2)",
    )
    parser.add_argument(
        "--use-text", action="store_true", help="score the 'text' fields even where 'tokens' are present"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="truncate the judge's retokenised ids to the generating model's length (e.g. 1024)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON report path (default: SAMPLES with suffix .genppl.json)"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dind.data.tokenizers import TOKENIZERS
    from dind.eval.judge import load_judge
    from dind.eval.report import decode_for_judge, evaluate, format_summary, read_samples

    tokenizer = TOKENIZERS.build(args.tokenizer)
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
    result = evaluate(judge, texts, tokens=tokens, max_length=args.max_length, progress=args.progress)
    result = {"samples": str(args.samples), "judge": str(args.judge), **result}
    out = args.out or args.samples.with_suffix(".genppl.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(format_summary(result))
    print(f"report written to {out}")
    return 0
