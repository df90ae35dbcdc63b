"""``dind sample``: generate text with a multi-stage (DiD) plan; write samples.jsonl with traces."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import attrs
import torch

from dind.errors import ConfigError, UserError
from dind.outputs import atomic_write, check_output


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"  # argparse says "invalid positive integer value: '0'"


def seed_int(text: str) -> int:
    """argparse type: an integer in [0, 2**64)."""
    value = int(text)
    if not 0 <= value < 2**64:
        raise ValueError(text)
    return value


seed_int.__name__ = "seed (an integer in [0, 2**64))"


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(text)
    return value


positive_float.__name__ = "positive number"


def top_p_float(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


top_p_float.__name__ = "top-p (a number in (0, 1])"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dind.models.static_step import STEP_MODES  # the models package: only once parsed

    parser.add_argument(
        "--model",
        default="micro",
        help="a checkpoint directory, or a preset name (seeded random initialisation: a smoke test "
        "that samples noise) (default: micro)",
    )
    parser.add_argument(
        "--plan",
        default="4 -> 1024@0.5",
        help='stage plan, e.g. "4 -> 1024@0.5" (default), "4 -> L@0.5:posthoc", "4/8 -> L@0.25:random"',
    )
    parser.add_argument(
        "--length", type=positive_int, default=1024, help="tokens per sample, BOS included (default: 1024)"
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
        help="BD3-LM's degenerate-sample rejection (flatters Gen PPL; off by default)",
    )
    parser.add_argument("--out", type=Path, default=Path("samples.jsonl"), help="JSON Lines output")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--no-cache", dest="use_cache", action="store_false", help="uncached reference path")
    parser.add_argument(
        "--step-mode",
        choices=STEP_MODES,
        default="dynamic",
        help="the cached decode step: dynamic (shapes grow block by block), static (fixed shapes, "
        "preallocated cache, folded weights) or compiled (the static step under torch.compile); the "
        "same samples in fp32 (default: dynamic)",
    )
    parser.add_argument("--device", default=None, help="device (default: cuda if available, else cpu)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def check_step_mode_options(args: argparse.Namespace) -> None:
    """--step-mode other than dynamic is a cached step: it cannot run with --no-cache."""
    if args.step_mode != "dynamic" and not args.use_cache:
        raise ConfigError(
            f"--step-mode {args.step_mode} needs the KV cache, so it cannot be combined with --no-cache "
            "(drop --no-cache, or use --step-mode dynamic)"
        )


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise UserError(f"dind sample needs {module} for {what}, which is not available ({error})") from None


def load_model(spec: str, device: torch.device) -> Any:
    """A checkpoint directory, or a preset name: fresh weights with a seeded random initialisation
    (BD3-LM's zero-initialised output layer would give uniform logits, hiding every code path).
    On CPU a checkpoint stored in bf16/fp16 (like the shipped demo model) is computed in fp32, as
    ``dind demo`` does: CPUs lack fast half-precision matmuls, and BD3-LM keeps the residual stream
    in fp32 (bf16 is its autocast matmul precision on GPU, not its weights' dtype). On other
    devices the stored dtype is kept."""
    models = _import("dind.models", "--model")
    if not Path(spec).expanduser().is_dir() and spec in models.PRESETS:
        return models.load(spec, device=device, init="random", seed=0, dropout=0.0)
    path = Path(spec).expanduser()
    if not path.exists() and "/" not in spec and "\\" not in spec:  # a mistyped preset, not a path
        raise UserError(
            f"--model {spec!r} is neither a checkpoint directory nor a preset "
            f"(presets: {', '.join(sorted(models.PRESETS))})"
        )
    return models.load(spec, device=device, dtype=torch.float32 if device.type == "cpu" else None)


def resolve_tokenizer(name: str | None, model: Any) -> tuple[str, Any]:
    """``--tokenizer``: (name, tokenizer) for the named tokenizer, which must share the model's
    MASK id, or (None) for the registered tokenizer that fits the model's vocabulary."""
    tokenizers = _import("dind.data.tokenizers", "--tokenizer")
    if name is None:
        name = tokenizers.tokenizer_for_vocabulary(model.vocab_size, model.mask_id)
    tokenizer = tokenizers.TOKENIZERS.build(name)
    if model.mask_id != tokenizer.mask_id:
        raise ValueError(
            f"--tokenizer must match the model's vocabulary (got {name!r} with mask_id {tokenizer.mask_id}, "
            f"model mask_id {model.mask_id})"
        )
    return name, tokenizer


def build_plan(args: argparse.Namespace, model: Any) -> Any:
    """--plan with --steps/--top-p/--temperature applied to every stage; a remasker that needs the
    model (":posthoc") gets it from the sampler's ``RemaskContext``."""
    from dind.sampling.plan import StagePlan

    plan = StagePlan.parse(args.plan)
    overrides = {name: getattr(args, name) for name in ("steps", "top_p", "temperature")}
    overrides = {name: value for name, value in overrides.items() if value is not None}
    return StagePlan([attrs.evolve(stage, **overrides) for stage in plan]) if overrides else plan


def run(args: argparse.Namespace) -> int:
    from dind.sampling import CONFIDENCE_TRACKERS, UNMASKING_RULES, generate

    check_step_mode_options(args)
    out = check_output(args.out, overwrite=args.overwrite)  # before any sampling
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    _, tokenizer = resolve_tokenizer(args.tokenizer, model)
    result = generate(
        model, build_plan(args, model), length=args.length, batch_size=args.batch_size, seed=args.seed,
        prompt=tokenizer.encode(args.prompt) if args.prompt else None,
        bos_id=tokenizer.eos_id if args.bos else None, eos_id=tokenizer.eos_id,
        tracker=CONFIDENCE_TRACKERS.build(args.tracker), unmasking=UNMASKING_RULES.build(args.unmasking),
        use_cache=args.use_cache, step_mode=args.step_mode, stop_at_eos=args.stop_at_eos,
        reject_low_entropy=args.reject_low_entropy,
        device=device, progress=args.progress,
    )  # fmt: skip
    records = sample_records(result, tokenizer.decode, step_mode=args.step_mode)
    with atomic_write(out, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    print(format_trace(result))
    print(f"{len(records)} samples written to {args.out}")
    return 0


def resolve_device(name: str | None) -> torch.device:
    """--device: a torch device string that this machine has."""
    try:
        device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device name (e.g. cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name!r}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def sample_records(result: Any, decode: Any, *, step_mode: str = "dynamic") -> list[dict[str, Any]]:
    """One JSON-ready dict per row: text, tokens (up to its length), seed, step mode and per-stage summary."""
    records = []
    for row, (tokens, length) in enumerate(zip(result.tokens.tolist(), result.lengths.tolist(), strict=True)):
        stages = []
        for stage in result.trace:
            summary = stage.summary()
            summary["remasked"], summary["nfe"] = summary["remasked"][row], summary["nfe"][row]
            stages.append(summary)
        records.append({
            "text": decode(tokens[:length]), "tokens": tokens[:length], "seed": result.seeds[row],
            "step_mode": step_mode, "attempts": int(result.attempts[row]), "nfe": int(result.nfe[row]),
            "stages": stages,
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
