"""The default trainer: mixed-scale block-diffusion training of built components, resumed exactly.

``Trainer(model, objective, data, optimizer, scheduler, **settings)`` takes objects (a DiT, an
``Objective``, ``TrainingData``, a torch optimizer over the model's parameters, a ``LambdaLR`` on
that optimizer) and the plain ``TrainSettings``; ``TrainConfig.build()`` makes all of them from a
config. One optimizer step reads the next global batch (every rank reads the same rows) and draws
the noise for all of it from the trainer's generator; the rows are then split into
``accumulation`` micro-steps x ranks. So the world size and the accumulation only regroup the
rows: the step's gradient is the same (up to float summation order) however the batch is spread.

Everything a step consumes (data position, the noise generator, the global RNG for dropout,
optimizer, scheduler position, EMA, the sampling interval in the model's buffers) is in the
checkpoint (``dind.training.state``), so N steps + resume + N steps equals 2N steps.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

import dind.training.run_files as run_files
import dind.training.state as checkpoint_state
from dind.registry import Registry
from dind.training.data import TrainingData
from dind.training.distributed import DistributedContext, init_distributed, unwrap
from dind.training.ema import ExponentialMovingAverage
from dind.training.evaluation import Validation, eval_record, variance_record
from dind.training.loggers import build_loggers
from dind.training.metrics import MetricsLog, Throughput, announce, progress_bar, train_record
from dind.training.objective import Objective
from dind.training.settings import RecordedConfig, TrainSettings
from dind.training.step import accumulate_gradients, clip_gradients, non_finite_error
from dind.training.variance import sampling_interval, set_sampling_interval
from dind.training.wiring import autocast_dtype, check_components, place_model

TRAINERS: Registry[Any] = Registry("trainers", entry_point_group="dind.trainers")


@TRAINERS.register("default")
class Trainer:
    """Train built components; ``fit()`` runs to ``steps``; ``resume(path)`` first continues a run.

    ``data``: ``TrainingData``; ``settings``: the fields of ``TrainSettings`` (steps, batch_size,
    out_dir, ema_decay, precision, eval/save cadence, ...); ``context``: the process group (default:
    one process on CUDA if available); ``config``: the TrainConfig recorded in the run directory
    and its checkpoints (what ``dind train --resume DIR`` continues with), if any; ``overwrite``:
    replace a run already in out_dir (else ``fit()`` refuses)."""

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        data: TrainingData,
        optimizer: torch.optim.Optimizer,
        scheduler: LambdaLR,
        *,
        context: DistributedContext | None = None,
        config: RecordedConfig | None = None,
        overwrite: bool = False,
        **settings: Any,
    ):
        self.settings = settings = TrainSettings.from_keywords(settings, caller="Trainer")
        check_components(model, objective, optimizer, scheduler, data=data, settings=settings)
        self.config, self.overwrite = config, overwrite
        self.resumed_from: Path | None = None
        self.restarting = False  # resume(missing_ok=True) of a run none of whose saves finished
        self.saved_step: int | None = None  # the step the last completed save holds
        self.context = context or init_distributed("none", "auto")
        self.model, self.objective, self.data = model, objective, data
        self.train_batches, self.length = data.train, data.length
        self.generator = torch.Generator().manual_seed(settings.seed)  # noise: shared by all ranks
        self.micro_batch, self.accumulation = settings.batch_geometry(self.context.world_size)
        fsdp = self.context.mode == "fsdp"
        self.export_model = copy.deepcopy(model) if fsdp and self.context.is_main else None
        self.forward = place_model(model, optimizer, self.context, settings)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.ema = None
        if settings.ema_decay is not None:
            self.ema = ExponentialMovingAverage(unwrap(self.forward), settings.ema_decay)
        self.autocast = autocast_dtype(settings.precision, self.context.device)
        self.validation = Validation(
            self.forward if fsdp else unwrap(self.forward),  # FSDP: the wrapper's hooks gather weights
            objective,
            data.validation,
            rows=self.micro_batch,
            batches=settings.eval_batches,
            seed=settings.eval_seed,
            variance=settings.variance,
            mask_id=model.mask_id,
            context=self.context,
        )
        self.step, self.tokens_seen = 0, 0
        self.out_dir = Path(settings.out_dir)
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", enabled=self.context.is_main)
        self.loggers = build_loggers(settings.loggers)  # a missing package fails here, before any work

    def autocast_context(self) -> Any:
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.context.device.type, dtype=self.autocast)

    def ema_weights(self) -> Any:
        """A context manager: the EMA weights in the model for the duration (evaluation, export)."""
        return nullcontext() if self.ema is None else self.ema.swapped_into(unwrap(self.forward))

    def train_step(self) -> dict[str, float]:
        """One optimizer step; returns its (global) metrics."""
        lr = float(self.optimizer.param_groups[0]["lr"])  # the scheduler's rate for this step
        low, high = sampling_interval(self.model)
        clean = self.train_batches.next(self.settings.batch_size)
        draw = self.objective.draw(
            clean, mask_id=self.model.mask_id, low=low, high=high, generator=self.generator
        )
        totals = accumulate_gradients(
            self.forward,
            self.objective,
            draw,
            context=self.context,
            rows=self.micro_batch,
            accumulation=self.accumulation,
            mask_id=self.model.mask_id,
            autocast=self.autocast_context,
        )
        grad_norm = clip_gradients(self.forward.parameters(), self.settings.grad_clip)
        local_loss = float(totals[0] / totals[1])
        totals = self.context.all_reduce_sum(totals)
        nll = float(totals[0] / totals[1])
        if not (math.isfinite(nll) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            raise non_finite_error(self.step + 1, nll, grad_norm, self.saved_step)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(unwrap(self.forward))
        self.step += 1
        self.tokens_seen += self.settings.batch_size * self.length
        return {
            "loss": local_loss,
            "nll": nll,
            "lr": lr,
            "grad_norm": grad_norm,
            "masked_fraction": float(totals[2] / totals[1]),
        }

    def fit(self) -> dict[str, Any]:
        """Train to ``steps``; saves on the cadence, at the end and on KeyboardInterrupt."""
        config = self.settings
        if self.scheduler.last_epoch != self.step:
            raise ValueError(
                f"scheduler must be at the trainer's step (got last_epoch {self.scheduler.last_epoch}, "
                f"step {self.step}); do not step it outside the Trainer"
            )
        with run_files.opened(self):  # the main process's run directory, metric sinks, warnings
            self.context.barrier()
            bar = progress_bar(config.steps, self.step, enabled=self.context.is_main and config.progress)
            try:
                return self._fit(bar)
            finally:
                bar.close()

    def _fit(self, bar: Any) -> dict[str, Any]:
        config = self.settings
        throughput, started, last_eval = Throughput(), time.perf_counter(), None
        window: list[dict[str, float]] = []
        if config.eval_every is not None and config.eval_at_start and self.step == 0:
            last_eval = self.evaluate_and_log("initial")  # the curve's starting point
        try:
            while self.step < config.steps:
                snapshot = checkpoint_state.step_snapshot(self.train_batches, self.generator)
                step_started = time.perf_counter()
                try:
                    metrics = self.train_step()
                except KeyboardInterrupt:  # the interrupted step never happened
                    checkpoint_state.restore_step_snapshot(snapshot, self.train_batches, self.generator)
                    self.optimizer.zero_grad(set_to_none=True)
                    raise
                throughput.add(config.batch_size * self.length, time.perf_counter() - step_started)
                window.append(metrics)
                bar.update(1)
                if self.step % config.log_every == 0 or self.step == config.steps:
                    elapsed, interval = time.perf_counter() - started, sampling_interval(self.model)
                    record = train_record(
                        window, self.step, self.tokens_seen, interval, throughput.rate(), elapsed
                    )
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                    self.metrics.write(record)
                    window = []
                last_eval = self._periodic_work(last_eval)
        except KeyboardInterrupt:
            self.save()
            raise
        if config.eval_every is not None and last_eval != self.step:
            last_eval = self.evaluate_and_log("final")
        self.save(periodic=config.keep_every is not None and self.step % config.keep_every == 0)
        return {"step": self.step, "tokens_seen": self.tokens_seen, "out_dir": str(self.out_dir)}

    def _periodic_work(self, last_eval: int | None) -> int | None:
        config, step = self.settings, self.step
        variance = config.variance
        evaluating = config.eval_every is not None and step % config.eval_every == 0
        if evaluating:  # searches too when variance.at_validation
            last_eval = self.evaluate_and_log("final" if step == config.steps else None)
        searched = evaluating and variance.enabled and variance.at_validation
        if variance.enabled and variance.every is not None and step % variance.every == 0 and not searched:
            self.search_and_log()
        periodic = config.keep_every is not None and step % config.keep_every == 0
        if periodic or (config.save_every is not None and step % config.save_every == 0):
            self.save(periodic=periodic)
        return last_eval

    def log(self, record: dict[str, Any]) -> None:
        self.metrics.write({"step": self.step, **record})

    @contextmanager
    def evaluation_mode(self) -> Iterator[None]:
        """EMA weights, dropout off, no gradients, the training autocast."""
        self.model.eval()
        try:
            with torch.no_grad(), self.ema_weights(), self.autocast_context():
                yield
        finally:
            self.model.train()

    def evaluate_and_log(self, which: str | None = None) -> int:
        """Validate (and search, when the variance search runs at validation) and log it; ``which``
        ("initial", "final"): announced on stderr with its size and time (main process, progress)."""
        say = which is not None and self.context.is_main and self.settings.progress
        began, size = time.perf_counter(), self.validation.describe(self.length)
        announce(f"{which} evaluation at step {self.step}: {size}" if say else None)
        with self.evaluation_mode():
            record = self.validation.evaluate()
        if self.settings.variance.enabled and self.settings.variance.at_validation:
            self.search_and_log()
        self.log(eval_record(record))
        seconds, nelbo = time.perf_counter() - began, record["val_nelbo"]
        announce(f"{which} evaluation done in {seconds:.1f} s: val_nelbo {nelbo:.4f}" if say else None)
        return self.step

    def search_and_log(self) -> None:
        """The clipped-schedule search; writes the best interval into the model's buffers."""
        with self.evaluation_mode():
            result = self.validation.search()
        set_sampling_interval(self.model, result.best)
        self.log(variance_record(result))

    def _parts(self) -> dict[str, Any]:
        return {
            "forward": self.forward,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "ema": self.ema,
            "generator": self.generator,
            "data": self.train_batches,
            "context": self.context,
        }

    def state_dict(self) -> dict[str, Any]:
        """``state.training_state`` of this trainer (a collective under DDP/FSDP)."""
        return checkpoint_state.training_state(**self._parts(), step=self.step, tokens_seen=self.tokens_seen)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.tokens_seen = checkpoint_state.load_training_state(state, **self._parts())

    def resume(self, path: str | Path, *, missing_ok: bool = False) -> int:
        """Continue from a checkpoint directory or a run's out_dir; returns the step reached.
        ``missing_ok``: when ``path`` is this run's out_dir and none of its saves finished (killed
        during the first), start again from step 0, replacing what it wrote, and return 0."""
        return run_files.resume(self, path, missing_ok=missing_ok)

    def save(self, *, periodic: bool = False) -> None:
        """Write ``checkpoints/latest`` (and ``checkpoints/step-N`` when ``periodic``) atomically."""
        run_files.save(self, periodic=periodic)
