"""``dind nelbo``: a model's NELBO (nats per token) and perplexity bound exp(NELBO) on text files,
at one or more block sizes, as BD3-LM reports likelihood; prints a summary, writes a JSON report."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from dind.cli.support import load_model, positive_int, resolve_device, resolve_tokenizer

GLOBAL = "L"


def block_size_arg(text: str) -> int | str:
    """argparse type of --block-size: a positive integer, or L (one global block)."""
    if text.strip().upper() == GLOBAL:
        return GLOBAL
    return positive_int(text)


block_size_arg.__name__ = "block size (a positive integer, or L for one global block)"


def noise_seed(text: str) -> int:
    """argparse type of --seed: an integer in [0, 2**32)."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise ValueError(text)
    return value


noise_seed.__name__ = "seed (an integer in [0, 2**32))"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="checkpoint directory (BD3-LM format), training run directory, shipped model (demo) or preset",
    )
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        action="extend",
        metavar="PATH",
        help="text files, or directories searched for --pattern files (a .jsonl file: one document "
        "per line); packed as the trainer packs them: each document then EOS, cut into chunks",
    )
    parser.add_argument(
        "--pattern", default="*.txt", help="files taken from --data directories (default *.txt)"
    )
    parser.add_argument(
        "--block-size",
        dest="block_sizes",
        type=block_size_arg,
        action="append",
        default=None,
        metavar="B",
        help="block size to score at, repeatable; L (or the length) is one global block "
        "(default: the block_size of the model's config.json, if it has one)",
    )
    parser.add_argument(
        "--length",
        type=positive_int,
        default=None,
        help="tokens per chunk (default: the model's model_length)",
    )
    parser.add_argument(
        "--chunk-format",
        choices=("plain", "bos", "bos_eos"),
        default="bos",
        help="bos (default, the trainer's): each chunk starts with EOS-as-BOS, never masked",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="chunks per forward (default 8)")
    parser.add_argument(
        "--num-batches",
        type=positive_int,
        default=None,
        help="score the first N batches (default: every chunk)",
    )
    parser.add_argument("--seed", type=noise_seed, default=0, help="noise seed; batch i draws with (seed, i)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto (default): bf16 autocast on CUDA as the trainer's validation, fp32 elsewhere",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="dind tokenizer (default: the one fitting the model's vocabulary)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report path (default: none, print only)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="REPORT",
        help="a JSON report of an earlier run on the same chunks and noise (another model, same "
        "--data, --length, --batch-size, --num-batches, --seed): prints this model minus that one "
        "per block size, paired over sequences, with the verdict by dind's rule (|mean| > 2 se)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out report")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bar (default: on when stderr is a terminal)",
    )


def _block_sizes(requested: list[int | str] | None, model: Any, length: int) -> list[int]:
    from dind.training.likelihood import check_block_sizes

    if requested is None:
        recorded = model.config.block_size
        if recorded is None:
            raise ValueError(
                "--block-size is required: the model's config.json records no block_size "
                "(e.g. --block-size 4 --block-size L)"
            )
        sizes, parameter = [int(recorded)], "the model's config block_size (the default --block-size)"
    else:
        sizes, parameter = [length if size == GLOBAL else int(size) for size in requested], "--block-size"
    check_block_sizes(sizes, length, parameter=parameter)
    return sizes


def _data_files(paths: list[str], pattern: str) -> list[str]:
    from dind.data import TextFiles

    for path in paths:
        if not Path(path).expanduser().exists():
            raise ValueError(f"--data must name existing files or directories (got {path!r}: no such path)")
    try:
        return [key for key, _ in TextFiles(tuple(paths), pattern=pattern).files()]
    except ValueError as error:  # TextFiles names its field "paths"
        raise ValueError("--data" + str(error).removeprefix("paths")) from None


def machine(device: Any) -> dict[str, Any]:
    """The machine the numbers (and seconds) belong to."""
    import os
    import platform

    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name() or "cpu"
    return {
        "device": str(device),
        "device_name": name,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dind.outputs import atomic_write_text, check_output
    from dind.training.likelihood import LikelihoodOptions, batch_count, likelihood, text_chunks
    from dind.training.likelihood_compare import check_comparable, compare_reports, read_report
    from dind.training.wiring import autocast_dtype

    started = time.perf_counter()
    out = check_output(args.out, overwrite=args.overwrite, option="--out") if args.out else None
    reference = read_report(args.compare, parameter="--compare") if args.compare else None
    files = _data_files(args.data, args.pattern)
    device = resolve_device(args.device)
    model = load_model(args.model, device).eval()
    model_length = int(model.config.model_length)
    length = model_length if args.length is None else args.length
    if length > model_length:
        raise ValueError(f"--length must be <= the model's model_length (got {length}, {model_length})")
    sizes = _block_sizes(args.block_sizes, model, length)
    tokenizer_name, tokenizer = resolve_tokenizer(args.tokenizer, model)
    chunks = text_chunks(args.data, tokenizer, length, chunk_format=args.chunk_format, pattern=args.pattern)
    if len(chunks) == 0:
        raise ValueError(
            f"--data must hold at least one chunk of --length {length} tokens "
            f"(got {len(chunks.tokens)} tokens, EOS included, in {len(files)} file(s))"
        )
    autocast = autocast_dtype(args.precision, device)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    options = LikelihoodOptions(
        batch_size=args.batch_size, num_batches=args.num_batches, seed=args.seed, autocast=autocast,
        progress=progress,
    )  # fmt: skip
    try:
        batches = batch_count(chunks, options)
    except ValueError as error:
        raise ValueError("--num-batches" + str(error).removeprefix("num_batches")) from None
    settings = {
        "files": len(files), "tokenizer": tokenizer_name, "length": length, "chunks": len(chunks),
        "num_batches": batches, "precision": "fp32" if autocast is None else "bf16 autocast",
        "chunks_sha256": hashlib.sha256(np.ascontiguousarray(chunks.tokens).tobytes()).hexdigest(),
    }  # fmt: skip
    if reference is not None:
        same = {"chunk_format": args.chunk_format, "batch_size": args.batch_size, "seed": args.seed}
        check_comparable({**settings, **same}, reference)  # before the scoring, not after
    results = likelihood(model, chunks, sizes, options)
    report = _report(args, settings, results, device, time.perf_counter() - started)
    if reference is not None:
        report["compare"] = {"report": str(args.compare), **compare_reports(report, reference)}
    print(format_summary(report))
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
        print(f"report written to {out}")
    return 0


def _report(
    args: argparse.Namespace, settings: dict[str, Any], results: list[Any], device: Any, seconds: float
) -> dict[str, Any]:
    """The JSON report: the settings, then one record per block size, then the machine."""
    from dind.training.variance import FULL_RANGE

    return {
        "model": str(args.model),
        "data": [str(path) for path in args.data],
        **settings,
        "chunk_format": args.chunk_format,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "noise": {
            "generator": "batch i: torch.Generator seeded with seed * 1000003 + i (the trainer's validation)",
            "schedule": "loglinear",
            "time_sampler": "stratified over batch x blocks",
            "time_range": list(FULL_RANGE),
            "draws_per_block": 1,
            "first_position_masked": False,
            "resample": False,
        },
        "units": "nats per token (every position of a chunk, BOS included)",
        "results": [
            result.as_dict() | {"global": result.block_size == settings["length"]} for result in results
        ],
        "machine": machine(device),
        "seconds": round(seconds, 3),
    }


def format_summary(report: dict[str, Any]) -> str:
    lines = [
        f"NELBO of {report['model']} on {report['num_batches']} batch(es) of <= {report['batch_size']} "
        f"x {report['length']} tokens ({report['chunks']} chunks in {report['files']} file(s)); nats per "
        f"token, t in {tuple(report['noise']['time_range'])}, seed {report['seed']}, {report['precision']}"
    ]
    for result in report["results"]:
        label = f"{result['block_size']}" + (" (global)" if result["global"] else "")
        stderr = "n/a" if result["stderr"] is None else f"{result['stderr']:.4f}"
        lines.append(
            f"  block {label:>12}: NELBO {result['nelbo']:.4f} +- {stderr}  "
            f"ppl bound {result['ppl_bound']:.3f}  ({result['tokens']} tokens, {result['seconds']:.1f} s)"
        )
    compare = report.get("compare")
    if compare:
        lines.append(f"this model minus {compare['report']}, paired over sequences ({compare['rule']}):")
        for row in compare["differences"]:
            lines.append(
                f"  block {row['block_size']:>12}: {row['mean']:+.4f} +- {row['se']:.4f} (n={row['n']}): "
                f"{row['verdict']}"
            )
    return "\n".join(lines)
