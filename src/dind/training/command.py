"""``dind train``: train or fine-tune from a YAML/JSON config with ``key.sub=value`` overrides.

dind train --config configs/tiny-shakespeare.yaml steps=2000 optim.lr=1e-3
dind train --config configs/bd3lm-110m-finetune-owt.yaml --init path/to/bd3lm-owt-block_size1024-pretrain
dind train --config configs/tiny-shakespeare.yaml --resume            # continue out_dir's latest
dind train --resume runs/tiny-shakespeare steps=4000     # the checkpoint's own config, overridden
torchrun --nproc_per_node=8 -m dind train --config ... distributed=ddp
"""

from __future__ import annotations

import argparse
import sys

from dind.training.checkpointing import TRAIN_CONFIG, find_checkpoint
from dind.training.config import TrainConfig, apply_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, nested keys with dots (values parsed as YAML)",
    )
    parser.add_argument("--config", help="YAML or JSON TrainConfig file (defaults apply to missing keys)")
    parser.add_argument(
        "--init", metavar="DIR", help="start from a BD3-LM-format checkpoint (sets model.init)"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="PATH",
        help="continue from a checkpoint dir or run dir (without --config: with the config saved in "
        "that checkpoint); bare --resume: out_dir's latest if any",
    )
    parser.add_argument("--out-dir", help="where metrics and checkpoints go (sets out_dir)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    overrides = list(args.overrides)
    if args.init is not None:
        overrides.append(f"model.init={args.init}")
    if args.out_dir is not None:
        overrides.append(f"out_dir={args.out_dir}")
    if args.config is not None:
        return TrainConfig.from_file(args.config, overrides)
    if args.resume not in (None, "auto"):  # continue the run as it was configured
        return TrainConfig.from_file(find_checkpoint(args.resume) / TRAIN_CONFIG, overrides)
    return TrainConfig.from_dict(apply_overrides({}, overrides))


def config_changes(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """``key: saved -> current`` for every leaf that differs between two config dicts."""
    changes = []
    for key in sorted(set(saved) | set(current)):
        before, after = saved.get(key), current.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += config_changes(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}: {before!r} -> {after!r}")
    return changes


def _report_changes(resume: str, config: TrainConfig) -> None:
    saved = TrainConfig.from_file(find_checkpoint(resume) / TRAIN_CONFIG).to_dict()
    # a new step count is how a run is extended: not worth a note
    changes = [
        change for change in config_changes(saved, config.to_dict()) if not change.startswith("steps:")
    ]
    if changes:
        print(
            "note: resuming with a config that differs from the checkpoint's:\n  " + "\n  ".join(changes),
            file=sys.stderr,
        )


def _resume_path(option: str | None, config: TrainConfig) -> str | None:
    if option is None:
        return None
    if option != "auto":
        return str(find_checkpoint(option))
    try:
        return str(find_checkpoint(config.out_dir))
    except FileNotFoundError:
        return None  # nothing to continue: start fresh (safe to always pass --resume in job scripts)


def run(args: argparse.Namespace) -> int:
    from dind.training.trainer import TRAINERS

    config = resolve_config(args)
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0
    resume = _resume_path(args.resume, config)
    trainer = TRAINERS.build(config.trainer, config=config)
    if resume is not None:
        step = trainer.resume(resume)
        if trainer.context.is_main:
            _report_changes(resume, config)
            print(f"resumed from {resume} at step {step}", file=sys.stderr)
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        if trainer.context.is_main:
            print(
                f"interrupted at step {trainer.step}; saved {config.out_dir}/checkpoints/latest",
                file=sys.stderr,
            )
        return 130
    finally:
        _shutdown(trainer)
    if trainer.context.is_main:
        print(
            f"done: step {summary['step']}, checkpoint {config.out_dir}/checkpoints/latest", file=sys.stderr
        )
    return 0


def _shutdown(trainer: object) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
