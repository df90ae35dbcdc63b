import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.training import LR_SCHEDULES, LRSchedule, build_adamw
from dind.training.optim import lambda_lr, peak_warning


@pytest.mark.parametrize("name", LR_SCHEDULES.names())
@given(warmup=st.integers(0, 50), total=st.integers(1, 200), step=st.integers(0, 400))
def test_schedule_contract(name, warmup, total, step):
    schedule = LR_SCHEDULES.build(name, warmup_steps=warmup, total_steps=total)
    assert isinstance(schedule, LRSchedule)
    factor = schedule.factor(step)
    assert 0.0 <= factor <= 1.0
    if step < warmup:
        assert factor == pytest.approx((step + 1) / warmup)  # linear warm-up, never 0


def test_constant_and_cosine_shapes():
    constant = LR_SCHEDULES.build("constant", warmup_steps=10)
    assert constant.factor(9) == 1.0 and constant.factor(10**6) == 1.0
    cosine = LR_SCHEDULES.build("cosine", warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert cosine.factor(10) == pytest.approx(1.0)
    assert cosine.factor(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cosine.factor(110) == pytest.approx(0.1) and cosine.factor(500) == pytest.approx(0.1)


def test_adamw_defaults_and_no_decay_on_vectors():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    optimizer = build_adamw(model.named_parameters(), weight_decay=0.1)
    decayed, plain = optimizer.param_groups
    assert optimizer.defaults["lr"] == 3e-4 and optimizer.defaults["betas"] == (0.9, 0.999)
    assert optimizer.defaults["eps"] == 1e-8
    assert decayed["weight_decay"] == 0.1 and [p.dim() for p in decayed["params"]] == [2]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3


@pytest.mark.parametrize(
    ("implementation", "device", "flags"),
    [
        ("auto", "cpu", {"fused": True}),
        ("auto", "meta", {"foreach": True}),
        ("fused", "cpu", {"fused": True}),
        ("foreach", "cpu", {"foreach": True}),
        ("for_loop", "cpu", {"foreach": False}),
    ],
)
def test_adamw_implementation_is_chosen_and_recorded(implementation, device, flags):
    from dind.training.optim import resolve_implementation

    model = torch.nn.Linear(3, 4)
    optimizer = build_adamw(model.named_parameters(), implementation=implementation, device=device)
    for key, value in flags.items():
        assert all(group[key] is value for group in optimizer.param_groups), key
    assert resolve_implementation(implementation, device) in ("fused", "foreach", "for_loop")


def test_adamw_implementation_errors_name_the_option():
    model = torch.nn.Linear(3, 4)
    with pytest.raises(ValueError, match=r"optim.implementation must be one of .*got 'fast'"):
        build_adamw(model.named_parameters(), implementation="fast")
    with pytest.raises(ValueError, match=r"optim.implementation 'fused' needs a device .*got device 'meta'"):
        build_adamw(model.named_parameters(), implementation="fused", device="meta")
    from dind.training import OptimConfig

    with pytest.raises(ValueError, match=r"implementation must be one of .*got 'fast'"):
        OptimConfig(implementation="fast")


@given(seed=st.integers(0, 2**16))
def test_implementations_agree_to_float_rounding(seed):
    """fused, foreach and for_loop take the same AdamW step (not bitwise: summation order)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(5, 7, generator=generator)
    grads = [torch.randn(5, 7, generator=generator) for _ in range(3)]
    results = []
    for implementation in ("fused", "foreach", "for_loop"):
        weight = torch.nn.Parameter(start.clone())
        optimizer = build_adamw([("w", weight)], lr=1e-2, weight_decay=0.1, implementation=implementation)
        for grad in grads:
            weight.grad = grad.clone()
            optimizer.step()
        results.append(weight.detach())
    assert torch.allclose(results[0], results[1], rtol=1e-5, atol=1e-7)
    assert torch.equal(results[1], results[2])


@pytest.mark.parametrize(
    ("name", "warmup", "steps", "expected"),
    [
        ("constant", 5, 10, None),  # full rate from step 4 on
        ("constant", 0, 1, None),
        ("cosine", 5, 10, None),  # the peak is one step (5), before the last
        ("constant", 10, 10, "reaches its peak 0.001 (optim.lr) only at the last of this run's 10 steps"),
        ("constant", 2500, 1000, "never reaches its peak 0.001 (optim.lr) in this run's 1000 steps "
                                 "(highest: 0.0004 at step 999)"),
        ("cosine", 20, 10, "never reaches its peak"),
    ],
)  # fmt: skip
def test_a_schedule_that_never_trains_at_the_full_rate_is_warned_about(name, warmup, steps, expected):
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([parameter], lr=1e-3)
    scheduler = lambda_lr(optimizer, LR_SCHEDULES.build(name, warmup_steps=warmup, total_steps=steps))
    warning = peak_warning(scheduler, steps)
    if expected is None:
        assert warning is None
    else:
        assert warning.startswith("warning: the learning rate ") and expected in warning
        assert "optim.warmup_steps >= steps?" in warning
