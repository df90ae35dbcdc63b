import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.training import LR_SCHEDULES, LRSchedule, build_adamw


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
