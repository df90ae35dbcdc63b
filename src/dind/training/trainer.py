"""The default trainer: mixed-scale block-diffusion training with exact resumption.

One optimizer step reads the next global batch (every rank reads the same rows) and draws the
noise for all of it from the trainer's generator; the rows are then split into ``accumulation``
micro-steps x ranks. So the world size and the accumulation only regroup the rows: the step's
gradient is the same (up to float summation order) however the batch is spread.

Everything a step consumes (data position, the noise generator, the global RNG for dropout,
optimizer, EMA, the sampling interval in the model's buffers) is in the checkpoint, so
N steps + resume + N steps equals 2N steps.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dind.errors import NonFiniteError
from dind.registry import Registry
from dind.training import rundir
from dind.training.activation_checkpointing import enable_activation_checkpointing
from dind.training.config import TrainConfig
from dind.training.distributed import gradient_sync, init_distributed, unwrap, wrap
from dind.training.ema import ExponentialMovingAverage
from dind.training.evaluation import Evaluator
from dind.training.loss import DiffusionForward
from dind.training.metrics import MetricsLog, Throughput, progress_bar
from dind.training.optim import build_adamw, set_learning_rate
from dind.training.setup import (
    autocast_dtype,
    batch_geometry,
    build_data,
    build_lr_schedule,
    build_model,
    build_objective,
    build_tokenizer,
    sequence_length,
)
from dind.training.rundir import RunLock
from dind.training.state import TrainerStateMixin
from dind.training.variance import sampling_interval

TRAINERS: Registry[Any] = Registry("trainers", entry_point_group="dind.trainers")


@TRAINERS.register("default")
class Trainer(TrainerStateMixin):
    """Build with a TrainConfig (and optionally a ready model), then ``fit()``; ``resume(path)``
    first to continue a run."""

    def __init__(self, config: TrainConfig, *, model: nn.Module | None = None, overwrite: bool = False):
        self.config = config
        self.overwrite = overwrite  # replace a run already in out_dir (else fit() refuses)
        self.resumed_from: Path | None = None
        self.saved_step: int | None = None  # the step the last completed save holds
        self.context = init_distributed(config.distributed, config.device)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = build_model(config.model) if model is None else model
        torch.manual_seed(config.seed + self.context.rank)  # dropout differs between ranks
        self.generator = torch.Generator().manual_seed(config.seed)  # noise: shared by all ranks
        self.tokenizer = build_tokenizer(config.data, self.model)
        self.length = sequence_length(config.data, self.model)
        self.objective = build_objective(config.objective, self.length)
        self.micro_batch, self.accumulation = batch_geometry(config, self.context.world_size)
        self.train_batches, validation = build_data(
            config.data, self.tokenizer, self.length, self.context, config.seed
        )
        fsdp = config.distributed == "fsdp"
        self.export_model = copy.deepcopy(self.model) if fsdp and self.context.is_main else None
        self.model.to(self.context.device).train()  # from_pretrained returns eval mode
        if config.activation_checkpointing:
            enable_activation_checkpointing(self.model)
        self.forward = wrap(DiffusionForward(self.model), self.context)
        self.optimizer = build_adamw(
            self.forward.named_parameters(),
            lr=config.optim.lr,
            betas=config.optim.betas,
            eps=config.optim.eps,
            weight_decay=config.optim.weight_decay,
        )
        self.lr_schedule = build_lr_schedule(config.optim, config.steps)
        self.ema = None
        if config.ema_decay is not None:
            self.ema = ExponentialMovingAverage(unwrap(self.forward), config.ema_decay)
        self.autocast = autocast_dtype(config.precision, self.context.device)
        self.evaluator = Evaluator(self, validation, forward=self.forward if fsdp else unwrap(self.forward))
        self.step, self.tokens_seen = 0, 0
        self.out_dir = Path(config.out_dir)
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", enabled=self.context.is_main)

    def autocast_context(self) -> Any:
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.context.device.type, dtype=self.autocast)

    @contextmanager
    def ema_weights(self) -> Iterator[None]:
        """The EMA weights in the model for the duration (evaluation, export)."""
        if self.ema is None:
            yield
            return
        with self.ema.swapped_into(unwrap(self.forward)):
            yield

    def train_step(self) -> dict[str, float]:
        """One optimizer step; returns its (global) metrics."""
        lr = self.config.optim.lr * self.lr_schedule.factor(self.step)
        set_learning_rate(self.optimizer, lr)
        low, high = sampling_interval(self.model)
        rank, rows, world = self.context.rank, self.micro_batch, self.context.world_size
        clean = self.train_batches.next(self.config.batch_size)
        draw = self.objective.draw(
            clean, mask_id=self.model.mask_id, low=low, high=high, generator=self.generator
        )
        totals = torch.zeros(3, dtype=torch.float64)  # nll sum, tokens, masked
        for micro_step in range(self.accumulation):
            start = (micro_step * world + rank) * rows
            mine = draw.rows(slice(start, start + rows)).to(self.context.device)
            last = micro_step == self.accumulation - 1
            with gradient_sync(self.forward, self.context, last):
                with self.autocast_context():
                    result = self.objective.loss(self.forward, mine, mask_id=self.model.mask_id)
                (result.loss / self.accumulation).backward()
            totals += torch.stack(
                [
                    result.nll_sum.double().cpu(),
                    torch.tensor(float(result.tokens)),
                    result.masked.double().cpu(),
                ]
            )
        grad_norm = self._clip_gradients()
        local_loss = float(totals[0] / totals[1])
        totals = self.context.all_reduce_sum(totals)
        nll = float(totals[0] / totals[1])
        if not (math.isfinite(nll) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(
                f"training stopped at step {self.step + 1}: the loss is {nll} and the gradient norm "
                f"{grad_norm}; the weights of this step were not applied or saved (last save: "
                f"{'none' if self.saved_step is None else f'step {self.saved_step}'}); lower optim.lr or "
                "check the data and the model"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(unwrap(self.forward))
        self.step += 1
        self.tokens_seen += self.config.batch_size * self.length
        return {
            "loss": local_loss,
            "nll": nll,
            "lr": lr,
            "grad_norm": grad_norm,
            "masked_fraction": float(totals[2] / totals[1]),
        }

    def _clip_gradients(self) -> float:
        limit = self.config.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(self.forward.parameters(), math.inf if limit is None else limit)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        return float(norm)

    def fit(self) -> dict[str, Any]:
        """Train to ``config.steps``; saves on the cadence, at the end and on KeyboardInterrupt."""
        config, main = self.config, self.context.is_main
        with ExitStack() as stack:
            if main:
                stack.enter_context(self._open_run_directory())
            self.context.barrier()
            bar = progress_bar(config.steps, self.step, enabled=main and config.progress)
            try:
                return self._fit(bar)
            finally:
                bar.close()

    @contextmanager
    def _open_run_directory(self) -> Iterator[None]:
        """Lock out_dir, refuse to destroy another run, tidy what a killed run left."""
        with RunLock(self.out_dir):
            rundir.check_out_dir(self.out_dir, resume_from=self.resumed_from, overwrite=self.overwrite)
            if self.resumed_from is None and self.overwrite:
                rundir.clear_run(self.out_dir)
            rundir.remove_scratch(self.out_dir)
            if self.resumed_from is not None:
                rundir.truncate_metrics(self.metrics.path, self.step)
            (self.out_dir / "config.yaml").write_text(self.config.to_yaml())
            yield

    def _fit(self, bar: Any) -> dict[str, Any]:
        config = self.config
        throughput, started, last_eval = Throughput(), time.perf_counter(), None
        window: list[dict[str, float]] = []
        if config.eval_every is not None and config.eval_at_start and self.step == 0:
            last_eval = self.evaluator.run_and_log()  # the curve's starting point
        try:
            while self.step < config.steps:
                snapshot, step_started = self.snapshot(), time.perf_counter()
                try:
                    metrics = self.train_step()
                except KeyboardInterrupt:
                    self.restore_snapshot(snapshot)  # the interrupted step never happened
                    raise
                throughput.add(config.batch_size * self.length, time.perf_counter() - step_started)
                window.append(metrics)
                bar.update(1)
                if self.step % config.log_every == 0 or self.step == config.steps:
                    record = self._log_record(window, throughput.rate(), time.perf_counter() - started)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                    self.metrics.write(record)
                    window = []
                last_eval = self._periodic_work(last_eval)
        except KeyboardInterrupt:
            self.save()
            raise
        if config.eval_every is not None and last_eval != self.step:
            last_eval = self.evaluator.run_and_log()
        self.save(periodic=config.keep_every is not None and self.step % config.keep_every == 0)
        return {"step": self.step, "tokens_seen": self.tokens_seen, "out_dir": str(self.out_dir)}

    def _periodic_work(self, last_eval: int | None) -> int | None:
        config, step = self.config, self.step
        variance = config.variance
        evaluating = config.eval_every is not None and step % config.eval_every == 0
        if evaluating:
            last_eval = self.evaluator.run_and_log()  # searches too when variance.at_validation
        searched = evaluating and variance.enabled and variance.at_validation
        if variance.enabled and variance.every is not None and step % variance.every == 0 and not searched:
            self.evaluator.search_and_log()
        periodic = config.keep_every is not None and step % config.keep_every == 0
        if periodic or (config.save_every is not None and step % config.save_every == 0):
            self.save(periodic=periodic)
        return last_eval

    def _log_record(
        self, window: list[dict[str, float]], tokens_per_s: float, elapsed: float
    ) -> dict[str, Any]:
        low, high = sampling_interval(self.model)
        means = {key: sum(m[key] for m in window) / len(window) for key in ("loss", "nll", "masked_fraction")}
        return {
            "kind": "train",
            "step": self.step,
            **means,
            "lr": window[-1]["lr"],
            "grad_norm": window[-1]["grad_norm"],
            "tokens_per_s": tokens_per_s,
            "tokens_seen": self.tokens_seen,
            "eps_min": low,
            "eps_max": high,
            "elapsed_s": elapsed,
        }

    def log(self, record: dict[str, Any]) -> None:
        self.metrics.write({"step": self.step, **record})

    def gathered(self, value: Tensor) -> Tensor:
        return self.context.all_reduce_sum(value)
