"""Checks and glue between the Trainer's built components (kept out of the Trainer's module)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dind.training.activation_checkpointing import enable_activation_checkpointing
from dind.training.block_sizes import check_divides
from dind.training.data import TrainingData
from dind.training.objective import Objective


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast: always for "bf16", on CUDA for "auto"; None = fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def rebind_sharded(optimizer: torch.optim.Optimizer, names: dict[int, str], model: nn.Module) -> None:
    """FSDP2 replaces the parameters with sharded ones: point the (fresh) optimizer at those."""
    if optimizer.state:
        raise ValueError("optimizer must not have taken a step before an FSDP Trainer shards the model")
    current = dict(model.named_parameters())
    for group in optimizer.param_groups:
        group["params"] = [current[names[id(parameter)]] for parameter in group["params"]]


def check_components(
    model: nn.Module, objective: Any, optimizer: Any, scheduler: Any, *, data: Any, settings: Any
) -> None:
    """The Trainer's arguments fit together (``data``: its TrainingData, ``settings``: TrainSettings)."""
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a dind.training.Objective (got {type(objective).__name__})")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (got {type(optimizer).__name__})")
    if not isinstance(scheduler, LambdaLR) or scheduler.optimizer is not optimizer:
        raise TypeError(
            "scheduler must be a torch.optim.lr_scheduler.LambdaLR on the optimizer given "
            f"(got {type(scheduler).__name__}; dind.training.lambda_lr(optimizer, schedule) makes one)"
        )
    mine = {id(p) for p in model.parameters()}
    foreign = sum(id(p) not in mine for group in optimizer.param_groups for p in group["params"])
    if foreign:
        raise ValueError(f"optimizer must hold the model's parameters only (got {foreign} other tensors)")
    if not isinstance(data, TrainingData):
        raise TypeError(f"data must be a dind.training.TrainingData (got {type(data).__name__})")
    check_divides(objective.block_sizes, data.length)
    if data.validation is None and (settings.eval_every is not None or settings.variance.enabled):
        raise ValueError("data.validation must be given when eval_every or variance.enabled is set")


def place_model(model: nn.Module, optimizer: torch.optim.Optimizer, context: Any, settings: Any) -> nn.Module:
    """The model on ``context``'s device, in train mode (activation checkpointing and compile as
    ``settings`` say), inside the (DDP/FSDP-wrapped) DiffusionForward that training calls."""
    from dind.training.compile import compile_model
    from dind.training.distributed import wrap
    from dind.training.loss import DiffusionForward

    names = {id(parameter): name for name, parameter in model.named_parameters()}
    model.to(context.device).train()  # dind.load returns eval mode
    if settings.activation_checkpointing:
        enable_activation_checkpointing(model)
    if settings.compile:
        compile_model(model)
    forward = wrap(DiffusionForward(model), context)
    if context.mode == "fsdp":
        rebind_sharded(optimizer, names, model)
    return forward
