"""Checkpointable training state as plain functions of explicit inputs: what a step consumes
(weights, optimizer, scheduler position, EMA, RNG states, data position, step) goes into one dict
and comes back out of it exactly, so N steps + resume + N steps equals 2N steps.

Layout of ``trainer_state.pt`` (``FORMAT`` 2): step, tokens_seen, model (the DiT's weights),
optimizer, scheduler (LambdaLR's state), ema (or None), rng (one entry per rank), data,
world_size, format. Format 1 (written before the scheduler was a LambdaLR) lacks ``scheduler``
and ``format``; it loads the same way, since the rate of a step is a function of the step alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

import dind.training.checkpointing as ckpt
from dind.training.data import TrainBatches
from dind.training.distributed import (
    DistributedContext,
    load_model_state,
    load_optimizer_state,
    model_state,
    optimizer_state,
    unwrap,
)
from dind.training.ema import ExponentialMovingAverage
from dind.training.optim import seek

FORMAT = 2
REQUIRED = ("step", "tokens_seen", "model", "optimizer", "ema", "rng", "data", "world_size")
_PREFIX = "model."  # DiffusionForward holds the DiT as ``.model``


def _strip(state: dict[str, Any]) -> dict[str, Any]:
    # copies: the live tensors change when the EMA weights are swapped in for export
    return {key.removeprefix(_PREFIX): value.detach().to("cpu", copy=True) for key, value in state.items()}


def _rng_states(generator: torch.Generator, context: DistributedContext) -> list[dict[str, Any]]:
    mine = ckpt.rng_state(generator)
    if not context.active:
        return [mine]
    every: list[Any] = [None] * context.world_size
    dist.all_gather_object(every, mine)
    return every


def training_state(
    *,
    forward: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    ema: ExponentialMovingAverage | None,
    generator: torch.Generator,
    data: TrainBatches,
    step: int,
    tokens_seen: int,
    context: DistributedContext,
) -> dict[str, Any]:
    """Everything needed to continue exactly. ``forward``: the (wrapped) ``DiffusionForward`` the
    optimizer trains. A collective under DDP/FSDP: call it on every rank."""
    return {
        "format": FORMAT,
        "step": step,
        "tokens_seen": tokens_seen,
        "model": _strip(model_state(forward, context)),
        "optimizer": optimizer_state(forward, optimizer, context),
        "scheduler": scheduler.state_dict(),
        "ema": None if ema is None else ema.state_dict(),
        "rng": _rng_states(generator, context),
        "data": data.state_dict(),
        "world_size": context.world_size,
    }


def check_layout(state: dict[str, Any]) -> None:
    """Refuse a state this code cannot continue, naming what is wrong."""
    if not isinstance(state, dict):
        raise ValueError(f"trainer state must be a dict (got {type(state).__name__})")
    version = state.get("format", 1)
    if version not in (1, FORMAT):
        raise ValueError(f"trainer state format must be 1 or {FORMAT} (got {version!r}); upgrade dind")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise ValueError(f"trainer state lacks {missing} (got keys {sorted(state)}); not a dind checkpoint?")


def load_training_state(
    state: dict[str, Any],
    *,
    forward: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    ema: ExponentialMovingAverage | None,
    generator: torch.Generator,
    data: TrainBatches,
    context: DistributedContext,
) -> tuple[int, int]:
    """Load ``state`` into the given objects; returns (step, tokens_seen). The scheduler keeps its
    own base rates and lambdas and is put at the checkpoint's step (``optim.seek``)."""
    check_layout(state)
    if state["world_size"] != context.world_size:
        raise ValueError(
            "resuming needs the same world size to replay every rank's RNG "
            f"(got checkpoint {state['world_size']}, now {context.world_size})"
        )
    load_model_state(forward, {_PREFIX + key: value for key, value in state["model"].items()}, context)
    load_optimizer_state(forward, optimizer, state["optimizer"], context)
    if (ema is None) != (state["ema"] is None):
        raise ValueError("ema_decay must be set in both the checkpoint's run and this one, or in neither")
    if ema is not None:
        ema.load_state_dict(state["ema"])
    data.load_state_dict(state["data"])
    ckpt.restore_rng_state(generator, state["rng"][context.rank])
    seek(scheduler, state["step"])
    return state["step"], state["tokens_seen"]


def step_snapshot(data: TrainBatches, generator: torch.Generator) -> dict[str, Any]:
    """What a step consumes besides the weights: data position and RNG states."""
    return {"data": data.state_dict(), "rng": ckpt.rng_state(generator)}


def restore_step_snapshot(snapshot: dict[str, Any], data: TrainBatches, generator: torch.Generator) -> None:
    data.load_state_dict(snapshot["data"])
    ckpt.restore_rng_state(generator, snapshot["rng"])


@contextmanager
def exported_model(
    *,
    forward: nn.Module,
    model: nn.Module,
    ema: ExponentialMovingAverage | None,
    context: DistributedContext,
    export_model: nn.Module | None = None,
) -> Iterator[nn.Module | None]:
    """The model to publish, holding the EMA weights (when there is an EMA): ``model`` itself with
    the EMA swapped in, or under FSDP ``export_model`` (an unsharded copy) on the main rank and
    None elsewhere. A collective under FSDP: enter it on every rank."""
    if context.mode != "fsdp":
        if ema is None:
            yield model
        else:
            with ema.swapped_into(unwrap(forward)):
                yield model
        return
    weights = _strip(model_state(forward, context))
    if ema is not None:
        weights.update(_strip(ema.state_dict()["shadow"]))
    if context.is_main:
        export_model.load_state_dict(weights)
    yield export_model
