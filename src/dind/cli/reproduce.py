"""``dind reproduce``: the command line of ``dind.eval.reproduce`` (PAPER Tables 1-3, Figure 2).

Light at import (no torch, matplotlib or transformers): they load inside ``run``.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from dind.cli.support import positive_int, seed_int


def _asset(name: str) -> str:
    return str(resources.files("dind") / "assets" / name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dind.models import DECODE_STEPS  # torch: only once `dind reproduce` is parsed

    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="checkpoint or training run directory, or a shipped model (demo); repeat for a Table 3 "
        "section (default: the shipped tiny-shakespeare)",
    )
    parser.add_argument(
        "--judge",
        action="append",
        default=None,
        help="judge directory or shipped judge name; repeat to score with several and compare their "
        "verdicts (default: both shipped byte judges, the neural judge-shakespeare and the Kneser-Ney "
        "judge-kn-shakespeare)",
    )
    parser.add_argument("--out", type=Path, default=Path("dind-reproduce-out"), help="output directory")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small CPU run: 4 samples of 128 tokens, 12 plans (under two minutes on 2 idle cores; "
        "on a shared CPU use dind --threads 1)",
    )
    parser.add_argument(
        "--num-samples", type=positive_int, default=None, help="samples per plan (16; quick: 4)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="samples generated together (default 8)"
    )
    parser.add_argument(
        "--length", type=positive_int, default=None, help="sample length in tokens (256; quick: 128)"
    )
    parser.add_argument(
        "--seed", type=seed_int, default=0, help="sample i of every plan uses row_seed(seed, i)"
    )
    parser.add_argument("--device", default="cpu", help="device of the model and the judge (default: cpu)")
    parser.add_argument(
        "--step-mode",
        choices=DECODE_STEPS.names(),
        default="dynamic",
        help="the sampler's cached step (default: dynamic; static/compiled: the same samples, faster on CPU)",
    )
    parser.add_argument(
        "--no-long-row",
        dest="long_row",
        action="store_false",
        help="skip Table 1's long row (each model at twice its context, with and without windows: "
        "4 more cells of --num-samples samples; never run with --quick)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing report files in --out (samples already there are kept and reused)",
    )


def config_from_args(args: argparse.Namespace):
    from dind.eval.reproduce_plans import ReproduceConfig

    return ReproduceConfig(
        models=tuple(args.model or [_asset("tiny-shakespeare")]),
        judges=tuple(args.judge or (_asset("judge-shakespeare"), _asset("judge-kn-shakespeare"))),
        out=str(args.out),
        length=args.length or (128 if args.quick else 256),
        num_samples=args.num_samples or (4 if args.quick else 16),
        batch_size=args.batch_size or (4 if args.quick else 8),
        seed=args.seed,
        quick=args.quick,
        overwrite=args.overwrite,
        device=args.device,
        step_mode=args.step_mode,
        long_row=args.long_row and not args.quick,
    )


def run(args: argparse.Namespace) -> int:
    from dind.eval.reproduce import run as reproduce

    report = reproduce(config_from_args(args), progress=True)
    print(
        f"{len(report.rows)} plan rows, {len(report.records)} samples in {report.wall_time_s:.0f} s; files:"
    )
    for path in report.files:
        print(f"  {path}")
    return 0
