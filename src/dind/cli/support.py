"""What several ``dind`` subcommands share: argument types (each numeric rule written once), the
judge options, and turning --device / --model / --tokenizer into objects (the CLI is where names
become objects; the model itself always comes from ``dind.load``)."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dind.errors import UserError

if TYPE_CHECKING:  # torch is imported when a command runs, so `dind --help` stays light
    import torch


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


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(text)
    return value


nonnegative_float.__name__ = "number >= 0"


def top_p_float(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


top_p_float.__name__ = "top-p (a number in (0, 1])"


def unit_float(text: str) -> float:
    """argparse type: a number in [0, 1] (a remask ratio); a non-zero text that underflows to 0 is refused."""
    value = float(text)
    if not 0 <= value <= 1 or (value == 0 and any(d in "123456789" for d in text.lower().split("e")[0])):
        raise ValueError(text)
    return value


unit_float.__name__ = "ratio (a number in [0, 1])"


def comma_list(item: Any) -> Any:
    """argparse type: a comma-separated list whose every element passes the argparse type ``item``
    (so a list option shares the rule of its single-value option)."""

    def parse(text: str) -> list[Any]:
        values = [item(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise ValueError(text)
        return values

    parse.__name__ = f"comma-separated list (each a {item.__name__})"
    return parse


def positive_threads(text: str) -> int:
    """argparse type of --threads: a positive integer (argparse's own message names the option)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text[:200]!r})")
    cores = os.cpu_count() or 1
    if value > cores * THREADS_PER_CORE:
        raise argparse.ArgumentTypeError(
            f"must be at most {cores * THREADS_PER_CORE} ({THREADS_PER_CORE} x this machine's {cores} cores; "
            f"more threads only wait for each other) (got {value})"
        )
    return value


THREADS_PER_CORE = 4


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The judge options shared by ``dind eval`` and ``dind sweep``."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        required=True,
        help="directory of a causal LM saved with save_pretrained (GPT-2 Large for Gen PPL), a shipped "
        "judge (judge-shakespeare, judge-kn-shakespeare: `dind list`), or an owner/name hub id",
    )
    group.add_argument(
        "--judge-device", default=None, help="device of the judge (default: cuda if available)"
    )
    group.add_argument(
        "--judge-batch-size", type=positive_int, default=8, help="windows per judge forward pass"
    )
    group.add_argument(
        "--window",
        type=positive_int,
        default=None,
        help="judge window in tokens (default: min(1024, the judge's context size))",
    )
    group.add_argument(
        "--stride", type=positive_int, default=None, help="window stride (default: window // 2)"
    )


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise UserError(f"dind needs {module} for {what}, which is not available ({error})") from None


def load_model(spec: str, device: torch.device) -> Any:
    """--model through ``dind.load``: a checkpoint directory, a training run directory (its latest
    checkpoint), a shipped model (``demo``), or a preset name (fresh weights with a seeded random
    initialisation, no dropout: BD3-LM's zero-initialised output layer would give uniform logits,
    hiding every code path); a mistyped name is named as one. The dtype rule is ``dind.load``'s
    (half-precision checkpoints compute in fp32 on CPU)."""
    models = _import("dind.models", "--model")
    from dind.shipped import ASSETS, describe, shipped_path

    path = Path(spec).expanduser()
    if not path.exists() and spec in models.PRESETS:
        return models.load(spec, device=device, init="random", seed=0, dropout=0.0)
    if not path.exists() and spec not in ASSETS and "/" not in spec and "\\" not in spec:
        raise UserError(  # a mistyped name, not a path
            f"--model {spec!r} is neither a checkpoint or run directory, a preset "
            f"({', '.join(sorted(models.PRESETS))}) nor a shipped model ({describe('model')})"
        )
    shipped_path(spec, "model", parameter="--model")  # a judge's name: said with this option's name
    try:
        return models.load(spec, device=device)
    except (ValueError, FileNotFoundError) as error:  # dind.load names its own parameter: say --model
        if not str(error).startswith("path_or_preset"):
            raise
        raise type(error)("--model" + str(error).removeprefix("path_or_preset")) from None


def resolve_tokenizer(name: str | None, model: Any) -> tuple[str, Any]:
    """``--tokenizer``: (name, tokenizer) for the named tokenizer, which must share the model's
    MASK id, or (None) for the registered tokenizer that fits the model's vocabulary."""
    tokenizers = _import("dind.data.tokenizers", "--tokenizer")
    try:
        return tokenizers.tokenizer_for_model(model, name)
    except ValueError as error:
        raise ValueError(f"--{error}") from None


def resolve_device(name: str | None) -> torch.device:
    """--device: a torch device string that this machine has."""
    import torch

    try:
        device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device name (e.g. cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name!r}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
