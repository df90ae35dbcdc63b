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
from pathlib import Path
from typing import Any

from dind.training.checkpointing import TRAIN_CONFIG, find_checkpoint
from dind.training.config import TrainConfig, apply_overrides, load_plugins
from dind.training.rundir import RUN_CONFIG, check_out_dir, holds_run, nothing_saved, restartable, run_dir_of


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
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a run already in out_dir (else: refused)"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def _override_taken_as_resume_path(args: argparse.Namespace) -> None:
    """``--resume key=value``: argparse gives the override to --resume as its PATH. A path that
    does not exist and reads as an override is taken as one, after a bare --resume (said once)."""
    value = args.resume
    if value in (None, "auto") or "=" not in value or Path(value).exists():
        return
    print(
        f"note: --resume {value}: no such path; read as a bare --resume and the override {value}",
        file=sys.stderr,
    )
    args.resume, args.overrides = "auto", [*args.overrides, value]


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    _override_taken_as_resume_path(args)
    overrides = list(args.overrides)
    if args.init is not None:
        overrides.append(f"model.init={args.init}")
    if args.out_dir is not None:
        overrides.append(f"out_dir={args.out_dir}")
    if args.config is not None:
        return TrainConfig.from_file(args.config, overrides)
    if args.resume not in (None, "auto"):  # continue the run as it was configured
        try:
            checkpoint = find_checkpoint(args.resume)
        except FileNotFoundError:  # a run none of whose saves finished starts again with its config
            run = Path(args.resume)
            if not (nothing_saved(run) and (run / RUN_CONFIG).is_file()):
                raise
            return TrainConfig.from_file(run / RUN_CONFIG, [f"out_dir={run}", *overrides])
        home = run_dir_of(checkpoint)  # a copied run continues in the copy, not its recorded out_dir
        if home is not None and args.out_dir is None:
            overrides.insert(0, f"out_dir={home}")
        return TrainConfig.from_file(checkpoint / TRAIN_CONFIG, overrides)
    return TrainConfig.from_dict(apply_overrides({}, overrides))


def config_changes(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """``key: saved -> current`` for every leaf that differs between two config dicts (a component
    spec whose name changed is one change)."""
    changes = []
    for key in sorted(set(saved) | set(current)):
        before, after = saved.get(key), current.get(key)
        same_kind = (
            isinstance(before, dict) and isinstance(after, dict) and before.get("name") == after.get("name")
        )
        if same_kind:
            changes += config_changes(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}: {before!r} -> {after!r}")
    return changes


SCHEDULE_KEYS = ("steps", "optim.lr", "optim.lr_schedule", "optim.warmup_steps")


def _report_changes(resume: str, config: TrainConfig, step: int) -> None:
    saved_config = TrainConfig.from_file(find_checkpoint(resume) / TRAIN_CONFIG)
    changes = [
        change
        for change in config_changes(saved_config.to_dict(), config.to_dict())
        if not change.startswith("out_dir:")  # where the run continues is not a change to it
    ]
    if changes:
        print(
            "note: resuming with a config that differs from the checkpoint's:\n  " + "\n  ".join(changes),
            file=sys.stderr,
        )
    if saved_config.optim.implementation != config.optim.implementation:
        print(
            f"note: optim.implementation {config.optim.implementation!r} is not applied: the optimizer "
            "state in the checkpoint keeps the implementation it was saved with (so the run stays exact)",
            file=sys.stderr,
        )
    note = schedule_note(saved_config, config, step)
    if note:
        print(note, file=sys.stderr)


def _rates(config: TrainConfig, steps: int) -> list[float]:
    load_plugins(config.plugins)  # a schedule may come from a plugin
    schedule = config.optim.schedule(config.steps)
    return [config.optim.lr * schedule.factor(k) for k in range(steps)]


def schedule_note(saved: TrainConfig, current: TrainConfig, step: int) -> str | None:
    """What a change of the learning-rate schedule's keys on resume means, or None if none changed."""
    changes = [
        change
        for change in config_changes(saved.to_dict(), current.to_dict())
        if change.startswith(SCHEDULE_KEYS)
    ]
    if not changes:
        return None
    past_old, past_new = _rates(saved, step), _rates(current, step)
    listed = "; ".join(changes)
    if past_old == past_new:
        return (
            f"note: learning-rate schedule keys changed on resume ({listed}): the rate of every step "
            f"already taken (0..{step - 1}) is the same under the new config, so this run equals one "
            f"trained with the new config from the start"
        )
    first = next(k for k, (a, b) in enumerate(zip(past_old, past_new, strict=True)) if a != b)
    return (
        f"warning: learning-rate schedule keys changed on resume ({listed}): steps {first}..{step - 1} "
        f"already ran at other rates (step {first}: {past_old[first]:.3g} then, {past_new[first]:.3g} "
        f"under the new config); steps {step}.. follow the new schedule, so this run differs from "
        "one trained with the new config from the start"
    )


def _resume_path(option: str | None, config: TrainConfig) -> str | None:
    """The checkpoint to continue; None: none (no --resume, or out_dir has no finished save)."""
    if option is None:
        return None
    try:
        return str(find_checkpoint(config.out_dir if option == "auto" else option))
    except FileNotFoundError:
        if option == "auto" or restartable(option, config.out_dir):
            return None  # nothing to continue: start fresh (safe to always pass --resume in job scripts)
        raise


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0
    resume = _resume_path(args.resume, config)
    restarting = resume is None and args.resume is not None
    leftovers = restarting and holds_run(config.out_dir)  # a run killed before its first save finished
    check_out_dir(config.out_dir, resume_from=resume, overwrite=args.overwrite, restarting=restarting)
    trainer = config.build(overwrite=args.overwrite)  # before any work, above
    if resume is not None:
        step = trainer.resume(resume)
        if trainer.context.is_main:
            _report_changes(resume, config, step)
            print(f"resumed from {resume} at step {step}", file=sys.stderr)
    elif restarting:
        trainer.resume(config.out_dir, missing_ok=True)
        if leftovers and trainer.context.is_main:
            print(
                f"note: {config.out_dir} holds no finished checkpoint (its first save was interrupted): "
                "starting from step 0; what the interrupted run wrote is replaced",
                file=sys.stderr,
            )
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        if trainer.context.is_main:
            print(_interrupted(trainer, config), file=sys.stderr)
        return 130
    finally:
        _shutdown(trainer)
    if trainer.context.is_main:
        print(
            f"done: step {summary['step']}, checkpoint {config.out_dir}/checkpoints/latest", file=sys.stderr
        )
    return 0


def _interrupted(trainer: Any, config: TrainConfig) -> str:
    latest = f"{config.out_dir}/checkpoints/latest"
    if trainer.saved_step == trainer.step:
        return f"interrupted at step {trainer.step}; saved {latest}"
    held = "nothing" if trainer.saved_step is None else f"step {trainer.saved_step}"
    return f"interrupted at step {trainer.step} before its save finished: {latest} holds {held}"


def _shutdown(trainer: object) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
