"""``dind sweep``: the command line of the stage-2 sweep in ``dind.eval.sweep`` (PAPER Figure 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dind.cli.support import add_judge_arguments, comma_list, positive_int, seed_int, unit_float
from dind.eval.sweep import SweepSettings, run_sweep, sweep_points
from dind.models import DECODE_STEPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="checkpoint or training run directory, shipped model (demo) or preset name (dind list)",
    )
    add_judge_arguments(parser)
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="the model's dind tokenizer (default: the one fitting its vocabulary)",
    )
    parser.add_argument(
        "--length", type=positive_int, default=None, help="sample length (default: the model's model_length)"
    )
    parser.add_argument(
        "--draft-block-size", type=positive_int, default=4, help="stage-1 block size D (default: 4)"
    )
    parser.add_argument(
        "--block-sizes",
        type=comma_list(positive_int),
        default=None,
        help="stage-2 block sizes, comma-separated (default: 4,16,64,... up to --length)",
    )
    parser.add_argument(
        "--ratios",
        type=comma_list(unit_float),
        default=[0.1, 0.25, 0.5, 0.75, 0.9],
        help="remask ratios, comma-separated (default: 0.1,0.25,0.5,0.75,0.9)",
    )
    parser.add_argument(
        "--grid",
        choices=("axes", "cross"),
        default="axes",
        help="axes: block sizes at --anchor-ratio and ratios at --anchor-block-size; cross: all pairs",
    )
    parser.add_argument(
        "--anchor-ratio", type=unit_float, default=0.5, help="ratio of the block-size axis (0.5)"
    )
    parser.add_argument(
        "--anchor-block-size",
        type=positive_int,
        default=None,
        help="block size of the ratio axis (default: --length, a global block)",
    )
    parser.add_argument("--num-samples", type=positive_int, default=16, help="samples per plan (BD3-LM: 300)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="samples generated together")
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="sample i of every plan uses row_seed(seed, i), whatever --batch-size (default: 0)",
    )
    parser.add_argument(
        "--no-bos",
        dest="bos",
        action="store_false",
        help="do not freeze position 0 to BOS (= the tokenizer's EOS, BD3-LM's convention)",
    )
    parser.add_argument("--device", default=None, help="device of the model (default: cuda if available)")
    parser.add_argument(
        "--step-mode",
        choices=DECODE_STEPS.names(),
        default="dynamic",
        help="the sampler's cached step (default: dynamic; static/compiled: the same samples)",
    )
    parser.add_argument("--out", type=Path, default=Path("dind-sweep-out"), help="output directory")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def default_block_sizes(length: int) -> list[int]:
    sizes = [4**k for k in range(1, 32) if 4**k < length]
    return [*sizes, length]


def run(args: argparse.Namespace) -> int:
    from dind.cli.support import load_model, resolve_tokenizer
    from dind.eval.judge import load_judge

    model = load_model(
        args.model, torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    )
    tokenizer_name, tokenizer = resolve_tokenizer(args.tokenizer, model)
    if args.length is None:
        args.length = getattr(model, "model_length", 1024)
    judge = load_judge(
        args.judge,
        device=args.judge_device,
        batch_size=args.judge_batch_size,
        window=args.window,
        stride=args.stride,
    )
    settings = SweepSettings(
        model=str(args.model),
        judge=str(args.judge),
        draft_block_size=args.draft_block_size,
        length=args.length,
        num_samples=args.num_samples,
        seed=args.seed,
        bos_id=tokenizer.eos_id if args.bos else None,
        tokenizer=tokenizer_name,
    )
    points = sweep_points(
        args.block_sizes or default_block_sizes(args.length),
        args.ratios,
        grid=args.grid,
        anchor_block_size=args.anchor_block_size or args.length,
        anchor_ratio=args.anchor_ratio,
    )
    records = run_sweep(
        model,
        judge,
        tokenizer,
        points,
        settings,
        out_dir=args.out,
        batch_size=args.batch_size,
        progress=args.progress,
        step=DECODE_STEPS.build(args.step_mode),
    )
    for record in sorted(records, key=lambda r: (r["block_size"], r["remask_ratio"])):
        print(
            f"{record['plan']:<20} gen_ppl {record['gen_ppl']:9.3f}  stage1 {record['stage1_gen_ppl']:9.3f}  "
            f"entropy {record['unigram_entropy']:.3f}  nfe {record['nfe']:.0f}"
        )
    print(f"results in {args.out}/results.jsonl, results.csv and sweep.png")
    return 0
