"""AdamW and learning-rate schedules.

A schedule is a pure function of the optimizer step (``factor(step)`` multiplies the base rate);
``lambda_lr`` turns one into a ``torch.optim.lr_scheduler.LambdaLR`` (the object the Trainer
takes), and ``seek`` puts a scheduler at a step, so resuming needs only the step number.
``OptimConfig`` (the config's ``optim`` section) builds the AdamW and its LambdaLR.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol, runtime_checkable

import attrs
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dind.registry import Registry
from dind.training.components import ComponentSpec, build_component, spec_field
from dind.training.fields import finite, floats, one_of
from dind.validation import non_negative_int, positive_number


@runtime_checkable
class LRSchedule(Protocol):
    """``factor(step)``: the learning-rate multiplier for optimizer step ``step`` (0-based), in [0, 1]."""

    def factor(self, step: int) -> float: ...


LR_SCHEDULES: Registry[LRSchedule] = Registry("lr_schedules", entry_point_group="dind.lr_schedules")


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


@LR_SCHEDULES.register("constant")
@attrs.frozen
class ConstantWithWarmup:
    """Linear warm-up over ``warmup_steps``, then constant (BD3-LM's fine-tuning schedule)."""

    warmup_steps: int = attrs.field(default=0, validator=non_negative_int)
    total_steps: int | None = None  # accepted so every schedule builds from the same arguments

    def factor(self, step: int) -> float:
        return _warmup(step, self.warmup_steps)


@LR_SCHEDULES.register("cosine")
@attrs.frozen
class CosineWithWarmup:
    """Linear warm-up, then cosine decay to ``min_ratio`` at ``total_steps`` (constant after)."""

    total_steps: int = attrs.field(validator=non_negative_int)
    warmup_steps: int = attrs.field(default=0, validator=non_negative_int)
    min_ratio: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


OptimizerImplementation = Literal["auto", "fused", "foreach", "for_loop"]
IMPLEMENTATIONS: tuple[str, ...] = ("auto", "fused", "foreach", "for_loop")
# devices with a fused AdamW kernel that dind uses (torch 2.13 has CPU and CUDA ones); measured on
# the tiny model's 5.5M parameters on a 2-core CPU: fused 22 ms, for_loop 156 ms, foreach 199 ms
FUSED_DEVICES: tuple[str, ...] = ("cuda", "cpu")


def resolve_implementation(implementation: str, device: torch.device | str | None = None) -> str:
    """``auto`` -> ``fused`` where the device has a fused kernel, else ``foreach``; the others are
    checked and returned. ``device``: where the parameters will live (default: CPU)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"optim.implementation must be one of {list(IMPLEMENTATIONS)} (got {implementation!r})"
        )
    kind = torch.device(device if device is not None else "cpu").type
    if implementation == "auto":
        return "fused" if kind in FUSED_DEVICES else "foreach"
    if implementation == "fused" and kind not in FUSED_DEVICES:
        raise ValueError(
            f"optim.implementation 'fused' needs a device with a fused AdamW kernel {list(FUSED_DEVICES)} "
            f"(got device {kind!r}); use 'auto' or 'foreach'"
        )
    return implementation


def build_adamw(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    *,
    lr: float = 3e-4,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    implementation: str = "auto",
    device: torch.device | str | None = None,
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases, norms and scalars are not decayed).

    ``implementation``: "fused" (one kernel for all parameters), "foreach" (batched ops),
    "for_loop" (one parameter at a time), or "auto" (fused where ``device`` has the kernel). The
    three give the same update up to float rounding, not bit for bit: a run resumes exactly with
    the implementation it was started with (the state dict is the same for all of them)."""
    chosen = resolve_implementation(implementation, device)
    decay, no_decay = [], []
    for _, parameter in named_parameters:
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    flags = {"fused": True} if chosen == "fused" else {"foreach": chosen == "foreach"}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **flags)


def lambda_lr(optimizer: torch.optim.Optimizer, schedule: LRSchedule) -> LambdaLR:
    """A LambdaLR whose rate at optimizer step k (0-based) is ``base_lr * schedule.factor(k)``:
    the optimizer's current ``lr`` becomes the base rate; call ``scheduler.step()`` after each
    ``optimizer.step()``."""
    if not isinstance(schedule, LRSchedule):
        raise TypeError(f"schedule must have factor(step) -> float (got {type(schedule).__name__})")

    def factor(step: int) -> float:  # a plain function: LambdaLR's state_dict then stores no lambda
        return schedule.factor(step)

    return LambdaLR(optimizer, factor)


def peak_warning(scheduler: LambdaLR, steps: int) -> str | None:
    """A warning when a run of ``steps`` optimizer steps never trains at the full learning rate
    before its last step: the schedule's factor first reaches 1 at the last step (a warm-up as long
    as the run) or never (longer, or a schedule that stays below 1); None otherwise. Scans at most
    the first million steps (stopping at the first that reaches the peak)."""
    factor, peak = scheduler.lr_lambdas[0], scheduler.base_lrs[0]
    scanned = range(max(1, min(steps - 1, 1_000_000)))
    if any(factor(step) >= 1.0 - 1e-9 for step in scanned):
        return None
    last = steps - 1
    if factor(last) >= 1.0 - 1e-9:
        return (
            f"warning: the learning rate reaches its peak {peak:.3g} (optim.lr) only at the last of this "
            f"run's {steps} steps: the warm-up is as long as the run (optim.warmup_steps >= steps?)"
        )
    highest = max((*scanned, last), key=factor)
    return (
        f"warning: the learning rate never reaches its peak {peak:.3g} (optim.lr) in this run's {steps} "
        f"step{'s' * (steps != 1)} (highest: {peak * factor(highest):.3g} at step {highest}): the warm-up is "
        "longer than the run (optim.warmup_steps >= steps?) or the schedule stays below 1"
    )


def seek(scheduler: LambdaLR, step: int) -> None:
    """Put ``scheduler`` (and its optimizer's rates) at optimizer step ``step``, keeping its own
    base rates and lambdas (a resumed run follows the schedule it was given from ``step`` on)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer (got {step!r})")
    rates = [base * fn(step) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)]
    for group, base, rate in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, rates, strict=True):
        group["initial_lr"], group["lr"] = base, rate
    scheduler.last_epoch = step
    scheduler._last_lr = rates  # what get_last_lr() answers


def _betas(value: Sequence[float]) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"betas must hold two floats (got {value!r})")
    return floats(value)  # type: ignore[return-value]


@attrs.frozen
class OptimConfig:
    """AdamW (``build_adamw``) and its learning-rate schedule: ``lr_schedule`` is an LR_SCHEDULES
    spec (``{name: cosine, min_ratio: 0.1}``), built with ``warmup_steps`` and the run's steps."""

    lr: float = attrs.field(default=3e-4, converter=float, validator=[finite, positive_number])
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.999), converter=_betas)
    eps: float = attrs.field(default=1e-8, converter=float, validator=positive_number)
    weight_decay: float = attrs.field(default=0.0, converter=float, validator=attrs.validators.ge(0.0))
    lr_schedule: ComponentSpec = spec_field(
        LR_SCHEDULES, key="optim.lr_schedule", default="constant", given=("warmup_steps", "total_steps")
    )
    warmup_steps: int = attrs.field(default=2500, validator=non_negative_int)
    implementation: OptimizerImplementation = attrs.field(default="auto", validator=one_of(*IMPLEMENTATIONS))

    def schedule(self, total_steps: int) -> LRSchedule:
        return build_component(
            LR_SCHEDULES,
            self.lr_schedule,
            key="optim.lr_schedule",
            warmup_steps=self.warmup_steps,
            total_steps=total_steps,
        )

    def build(
        self, model: nn.Module, total_steps: int, device: torch.device | str | None = None
    ) -> tuple[torch.optim.Optimizer, LambdaLR]:
        """AdamW over ``model``'s parameters (to be trained on ``device``) and the LambdaLR of the
        schedule."""
        optimizer = build_adamw(
            model.named_parameters(),
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            implementation=self.implementation,
            device=device,
        )
        return optimizer, lambda_lr(optimizer, self.schedule(total_steps))
