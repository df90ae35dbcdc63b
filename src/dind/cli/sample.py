"""``dind sample``: generate text with a multi-stage (DiD) plan; write samples.jsonl with traces."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs

from dind.cli.support import (
    load_model,
    nonnegative_float,
    positive_float,
    positive_int,
    resolve_device,
    resolve_tokenizer,
    seed_int,
    top_p_float,
)
from dind.errors import ConfigError
from dind.outputs import atomic_write, check_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dind.models import DECODE_STEPS  # the models package: only once parsed

    parser.add_argument(
        "--model",
        default="micro",
        help="a checkpoint directory, a training run directory (its latest checkpoint), a shipped model "
        "(demo: `dind list`), or a preset name (seeded random initialisation: a smoke test that samples "
        "noise) (default: micro)",
    )
    parser.add_argument(
        "--plan",
        default="4 -> L@0.5",
        help='stage plan, e.g. "4 -> L@0.5" (default: draft with blocks of 4, remask half, refine with one '
        'global block of any --length), "4 -> L@0.5:posthoc", "4/8 -> L@0.25:random". Stage 2 stays exact '
        'first-hitting by default; "4 -> L@0.5{cache=skeleton(every=64,radius=2)}" refined 14x faster on '
        "the tiny model (CPU, batch 8, L = 256) with Gen PPL under both shipped judges and entropy no "
        "different from exact by |mean| > 2 se (benchmarks/results/refine-cpu.md). Beyond the model's "
        "context, stages run in windows: {context=N,slide=S} (see the guide)",
    )
    parser.add_argument(
        "--length",
        type=positive_int,
        default=None,
        help="tokens per sample, BOS included (default: the model's model_length, its training length)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=1, help="samples generated together (default: 1)"
    )
    parser.add_argument(
        "--seed", type=seed_int, default=0, help="row r uses a hash of (seed, r) (default: 0)"
    )
    parser.add_argument(
        "--unmasking",
        default="first_hitting",
        help="unmasking rule for stages that set none (`dind list`: unmasking_rules)",
    )
    parser.add_argument("--tracker", default="snapshot", help="confidence tracker (default: snapshot)")
    parser.add_argument(
        "--steps", type=positive_int, default=None, help="per-block step budget for every stage"
    )
    parser.add_argument(
        "--top-p", type=top_p_float, default=None, help="nucleus top-p for every stage (BD3-LM: 0.9)"
    )
    parser.add_argument(
        "--temperature", type=positive_float, default=None, help="temperature for every stage"
    )
    parser.add_argument("--prompt", default=None, help="prompt text (frozen prefix, after BOS)")
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer name (default: the one that fits the model's vocabulary)"
    )
    parser.add_argument(
        "--no-bos", dest="bos", action="store_false", help="do not put BOS (= EOS) at position 0"
    )
    parser.add_argument("--stop-at-eos", action="store_true", help="pad every sample after its first EOS")
    parser.add_argument(
        "--reject-low-entropy",
        action="store_true",
        help="BD3-LM's degenerate-sample rejection: redraw a sample whose last --stop-window tokens have a "
        "unigram entropy below --stop-min-entropy (flatters Gen PPL; off by default)",
    )
    parser.add_argument(
        "--variable-length",
        action="store_true",
        help="BD3-LM's variable-length sampling: each sample's draft (stage 1) stops at its first EOS, or "
        "drops its last --stop-window tokens and stops when their unigram entropy is below "
        "--stop-min-entropy; later stages refine each sample at its own length; every line of --out "
        "records the sample's length and why it stopped (length, eos or low_entropy)",
    )
    parser.add_argument(
        "--stop-window",
        type=positive_int,
        default=256,
        help="tokens whose unigram entropy --variable-length and --reject-low-entropy check (default: 256)",
    )
    parser.add_argument(
        "--stop-min-entropy",
        type=nonnegative_float,
        default=None,
        help="nats (default: BD3-LM's 4.0 for GPT-2 tokens; 2.5 for the byte tokenizer, whose natural "
        "text of 256 bytes measures 2.8-3.5 nats; 0 turns the entropy rule off)",
    )
    parser.add_argument("--out", type=Path, default=Path("samples.jsonl"), help="JSON Lines output")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="the uncached reference path (= --step-mode uncached)",
    )
    parser.add_argument(
        "--step-mode",
        choices=DECODE_STEPS.names(),
        default="dynamic",
        help="the decode step: dynamic (KV cache, shapes grow block by block), static (fixed shapes, "
        "preallocated cache, folded weights), compiled (the static step under torch.compile) or "
        "uncached (the reference forward); the same samples in fp32 (default: dynamic)",
    )
    parser.add_argument("--device", default=None, help="device (default: cuda if available, else cpu)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def step_mode_name(args: argparse.Namespace) -> str:
    """The decode step's name: --step-mode, or "uncached" for --no-cache, which only goes with the
    default --step-mode (every other one is a cached step)."""
    if args.use_cache:
        return args.step_mode
    if args.step_mode not in ("dynamic", "uncached"):
        raise ConfigError(
            f"--step-mode {args.step_mode} needs the KV cache, so it cannot be combined with --no-cache "
            "(drop --no-cache, or use --step-mode dynamic)"
        )
    return "uncached"


def build_plan(args: argparse.Namespace, model: Any) -> Any:
    """--plan with --steps/--top-p/--temperature applied to every stage; a remasker that needs the
    model (":posthoc") gets it from the sampler's ``RemaskContext``."""
    from dind.sampling.plan import StagePlan

    plan = StagePlan.parse(args.plan)
    overrides = {name: getattr(args, name) for name in ("steps", "top_p", "temperature")}
    overrides = {name: value for name, value in overrides.items() if value is not None}
    return StagePlan([attrs.evolve(stage, **overrides) for stage in plan]) if overrides else plan


def run(args: argparse.Namespace) -> int:
    from dind.eval.rejection import redraw_low_entropy
    from dind.models import DECODE_STEPS
    from dind.sampling import CONFIDENCE_TRACKERS, UNMASKING_RULES, GenerateOptions, generate, truncate_at_eos
    from dind.sampling.stopping import VariableLength, default_min_entropy

    step_mode = step_mode_name(args)
    if args.variable_length and args.reject_low_entropy:
        raise ConfigError(
            "--variable-length and --reject-low-entropy exclude each other (variable-length sampling "
            "already stops a sample whose tail has a low entropy, and keeps it shorter)"
        )
    out = check_output(args.out, overwrite=args.overwrite)  # before any sampling
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    tokenizer_name, tokenizer = resolve_tokenizer(args.tokenizer, model)
    plan = build_plan(args, model)
    min_entropy = args.stop_min_entropy
    min_entropy = default_min_entropy(tokenizer_name) if min_entropy is None else min_entropy
    stop = VariableLength(tokenizer.eos_id, args.stop_window, min_entropy) if args.variable_length else None
    options = GenerateOptions(
        tracker=CONFIDENCE_TRACKERS.build(args.tracker),
        unmasking=UNMASKING_RULES.build(args.unmasking),
        step=DECODE_STEPS.build(step_mode),
        bos_id=tokenizer.eos_id if args.bos else None,
        device=device,
        progress=args.progress,
        stop=stop,
    )
    prompt = tokenizer.encode(args.prompt) if args.prompt else None
    length = args.length if args.length is not None else getattr(model, "model_length", 1024)
    result = generate(
        model,
        plan,
        length=length,
        batch_size=args.batch_size,
        prompt=prompt,
        seed=args.seed,
        options=options,
    )
    if args.reject_low_entropy:
        result = redraw_low_entropy(
            model, plan, result, options=options, window=args.stop_window, min_entropy=min_entropy
        )
    if args.stop_at_eos:
        result = truncate_at_eos(result, tokenizer.eos_id)
    records = sample_records(result, tokenizer.decode, step_mode=step_mode)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    print(format_trace(result))
    print(f"{len(records)} samples written to {args.out}")
    return 0


def sample_records(result: Any, decode: Any, *, step_mode: str = "dynamic") -> list[dict[str, Any]]:
    """One JSON-ready dict per row: text, tokens (up to its length), seed, step mode and per-stage summary."""
    records = []
    for row, (tokens, length) in enumerate(zip(result.tokens.tolist(), result.lengths.tolist(), strict=True)):
        stages = []
        for stage in result.trace:
            summary = stage.summary()
            for key in ("remasked", "nfe", "scorer_nfe"):
                summary[key] = summary[key][row]
            stages.append(summary)
        records.append({
            "text": decode(tokens[:length]), "tokens": tokens[:length], "seed": result.seeds[row],
            "length": length, "stop": result.stops[row],
            "step_mode": step_mode, "attempts": int(result.attempts[row]), "nfe": int(result.nfe[row]),
            "scorer_nfe": int(result.scorer_nfe[row]), "stages": stages,
        })  # fmt: skip
    return records


def format_trace(result: Any) -> str:
    """A small table: one line per stage with NFEs (mean over rows), raw passes and times."""
    lines = ["stage   block  gamma  remasked  nfe(mean)  forward_passes  wall_s  model_s"]
    for index, stage in enumerate(result.trace, start=1):
        block = "global" if stage.block_size is None else str(stage.block_size)
        remasked = stage.remasked.sum(1).float().mean()
        lines.append(
            f"{index:>5}  {block:>6}  {stage.remask_ratio:5.2f}  {remasked:8.1f}  "
            f"{stage.nfe.float().mean():9.1f}  {stage.forward_passes:14d}  {stage.wall_time_s:6.2f}  "
            f"{stage.model_time_s:7.2f}"
        )
    return "\n".join(lines)
