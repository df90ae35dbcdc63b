"""The trainer's checkpointable state: save, resume, and the in-memory snapshot that makes an
interrupted step roll back cleanly (nothing is lost on KeyboardInterrupt)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch.distributed as dist
from torch import nn

from dind.training import checkpointing as ckpt
from dind.training import rundir
from dind.training.distributed import (
    load_model_state,
    load_optimizer_state,
    model_state,
    optimizer_state,
)

_PREFIX = "model."  # DiffusionForward holds the DiT as ``.model``


def _strip(state: dict[str, Any]) -> dict[str, Any]:
    # copies: the live tensors change when the EMA weights are swapped in for export
    return {key.removeprefix(_PREFIX): value.detach().to("cpu", copy=True) for key, value in state.items()}


def _prefixed(state: dict[str, Any]) -> dict[str, Any]:
    return {_PREFIX + key: value for key, value in state.items()}


class TrainerStateMixin:
    """Mixed into Trainer; uses its forward, model, optimizer, ema, generator, train_batches, step."""

    def _rng_states(self) -> list[dict[str, Any]]:
        mine = ckpt.rng_state(self.generator)
        if not self.context.active:
            return [mine]
        every: list[Any] = [None] * self.context.world_size
        dist.all_gather_object(every, mine)
        return every

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (collective under DDP/FSDP: call on every rank)."""
        return {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "model": _strip(model_state(self.forward, self.context)),
            "optimizer": optimizer_state(self.forward, self.optimizer, self.context),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": self._rng_states(),
            "data": self.train_batches.state_dict(),
            "world_size": self.context.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["world_size"] != self.context.world_size:
            raise ValueError(
                "resuming needs the same world size to replay every rank's RNG "
                f"(got checkpoint {state['world_size']}, now {self.context.world_size})"
            )
        load_model_state(self.forward, _prefixed(state["model"]), self.context)
        load_optimizer_state(self.forward, self.optimizer, state["optimizer"], self.context)
        if (self.ema is None) != (state["ema"] is None):
            raise ValueError("ema_decay must be set in both the checkpoint's run and this one, or in neither")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.train_batches.load_state_dict(state["data"])
        ckpt.restore_rng_state(self.generator, state["rng"][self.context.rank])
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]

    def resume(self, path: str) -> int:
        """Continue from a checkpoint directory or a run's out_dir; returns the step reached."""
        checkpoint = ckpt.find_checkpoint(path)
        self.load_state_dict(ckpt.read_trainer_state(checkpoint))
        self.resumed_from = checkpoint
        if rundir.run_dir_of(checkpoint) == self.out_dir.resolve():
            self.saved_step = self.step
        return self.step

    def snapshot(self) -> dict[str, Any]:
        """What a step consumes besides the weights: data position and RNG states."""
        return {"data": self.train_batches.state_dict(), "rng": ckpt.rng_state(self.generator)}

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.train_batches.load_state_dict(snapshot["data"])
        ckpt.restore_rng_state(self.generator, snapshot["rng"])
        self.optimizer.zero_grad(set_to_none=True)

    @contextmanager
    def exported(self) -> Iterator[nn.Module | None]:
        """The model to publish (EMA weights; on the main rank; None elsewhere)."""
        if self.context.mode != "fsdp":
            with self.ema_weights():
                yield self.model
            return
        weights = _strip(model_state(self.forward, self.context))  # collectives: every rank
        if self.ema is not None:
            weights.update(_strip(self.ema.state_dict()["shadow"]))
        if self.context.is_main:
            self.export_model.load_state_dict(weights)
        yield self.export_model

    def save(self, *, periodic: bool = False) -> None:
        """Write ``checkpoints/latest`` (and ``checkpoints/step-N`` when ``periodic``) atomically."""
        state = self.state_dict()
        root = ckpt.checkpoint_root(self.out_dir)
        with self.exported() as export:
            if self.context.is_main:
                latest = ckpt.write_checkpoint(
                    root / ckpt.LATEST,
                    export_model=export,
                    trainer_state=state,
                    config_yaml=self.config.to_yaml(),
                )
                self.saved_step = self.step
                if periodic:
                    with ckpt.atomic_directory(root / ckpt.periodic_name(self.step)) as staged:
                        shutil.copytree(latest, staged)
        self.context.barrier()
