"""Data-parallel training: DDP or FSDP2 (``fully_shard``), launched with torchrun.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; ``init_distributed``
reads them (NCCL on CUDA, gloo on CPU). The module that gets wrapped is the trainer's
``DiffusionForward`` (DDP's and FSDP's hooks run on ``forward``). Every rank sees the same global
batch and the same noise draw and keeps its own rows, so the gradients equal one process's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import attrs
import torch
import torch.distributed as dist
from torch import Tensor, nn

from dind.errors import UserError

DistributedMode = Literal["none", "ddp", "fsdp"]


@attrs.frozen
class DistributedContext:
    mode: DistributedMode
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.mode != "none" and dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """A summed copy of ``tensor`` over ranks (the input unchanged without a process group)."""
        if not self.active:
            return tensor
        reduced = tensor.detach().clone().to(self.device)
        dist.all_reduce(reduced)
        return reduced.to(tensor.device)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def init_distributed(mode: DistributedMode, device: str = "auto") -> DistributedContext:
    """The process group for ``mode`` from torchrun's environment (none: a single process)."""
    if mode not in ("none", "ddp", "fsdp"):
        raise ValueError(f"distributed must be one of none, ddp, fsdp (got {mode!r})")
    if mode == "none":
        return DistributedContext(mode, 0, 1, resolve_device(device))
    missing = [name for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"distributed={mode!r} needs torchrun's environment (missing {missing}); launch with "
            f"`torchrun --nproc_per_node=N -m dind train ...` or set distributed=none"
        )
    rank, world, local = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    target = resolve_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", local)
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistributedContext(mode, rank, world, target)


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The DiT's list of transformer blocks (the first ModuleList named ``blocks``)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] == "blocks":
            return module
    raise ValueError(f"model has no ModuleList named 'blocks' (got {type(model).__name__})")


def _wrap_none(forward: nn.Module, context: DistributedContext) -> nn.Module:
    return forward


def _wrap_ddp(forward: nn.Module, context: DistributedContext) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    # the buffers (rotary tables, the sampling interval) are small; DDP's default keeps them in sync
    return DistributedDataParallel(forward, device_ids=device_ids)


def _wrap_fsdp(forward: nn.Module, context: DistributedContext) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(context.device.type, (context.world_size,))
    for block in transformer_blocks(forward):
        fully_shard(block, mesh=mesh)
    fully_shard(forward, mesh=mesh)
    return forward


WRAPPERS: dict[str, Callable[[nn.Module, DistributedContext], nn.Module]] = {
    "none": _wrap_none,
    "ddp": _wrap_ddp,
    "fsdp": _wrap_fsdp,
}


def wrap(forward: nn.Module, context: DistributedContext) -> nn.Module:
    return WRAPPERS[context.mode](forward, context)


def full_tensor(tensor: Tensor) -> Tensor:
    """The whole tensor on every rank (a collective for FSDP's DTensor shards)."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def like(value: Tensor, reference: Tensor) -> Tensor:
    """``value`` (a whole tensor) laid out like ``reference`` (sharded when it is a DTensor)."""
    if hasattr(reference, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(value.to(reference.device), reference.device_mesh, reference.placements)
    return value.to(reference.device)


def model_state(forward: nn.Module, context: DistributedContext) -> dict[str, Any]:
    """The full state dict of the wrapped ``DiffusionForward`` (keys as in an unwrapped one)."""
    if context.mode == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(forward, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return unwrap(forward).state_dict()


def load_model_state(forward: nn.Module, state: dict[str, Any], context: DistributedContext) -> None:
    if context.mode == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(forward, state, options=StateDictOptions(full_state_dict=True))
        return
    model = unwrap(forward)
    problem = _shape_problem(model.state_dict(), state)
    if problem is not None:
        raise UserError(f"the checkpoint's model does not match this config's model: {problem}")
    model.load_state_dict(state)


def _shape_problem(expected: dict[str, Any], state: dict[str, Any]) -> str | None:
    """One bounded line naming the tensors missing, unexpected or of another shape; None if they fit."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{name} checkpoint {tuple(state[name].shape)} vs model {tuple(expected[name].shape)}"
        for name in set(expected) & set(state)
        if hasattr(state[name], "shape") and tuple(state[name].shape) != tuple(expected[name].shape)
    )
    parts = [
        f"{label} ({len(names)}): {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
        for label, names in (
            ("shapes differ", shapes),
            ("missing from the checkpoint", missing),
            ("not in the model", unexpected),
        )
        if names
    ]
    return "; ".join(parts) + " (resume with the model settings it was trained with)" if parts else None


def optimizer_state(
    forward: nn.Module, optimizer: torch.optim.Optimizer, context: DistributedContext
) -> dict:
    if context.mode == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(forward, optimizer, options=options)
    return optimizer.state_dict()


def load_optimizer_state(
    forward: nn.Module, optimizer: torch.optim.Optimizer, state: dict, context: DistributedContext
) -> None:
    if context.mode == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(forward, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 shards in place, so it is its own inside)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@contextmanager
def gradient_sync(forward: nn.Module, context: DistributedContext, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on accumulation micro-steps (all but the last)."""
    if enabled or context.mode == "none":
        yield
    elif context.mode == "ddp":
        with forward.no_sync():
            yield
    else:
        forward.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            forward.set_requires_gradient_sync(True)
