"""Every registered NoiseSchedule keeps the schedule invariants."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.schedules import SCHEDULES

NAMES = SCHEDULES.names()


@pytest.mark.parametrize("name", NAMES)
def test_endpoints(name):
    schedule = SCHEDULES.build(name)
    ends = schedule.alpha(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert ends.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("name", NAMES)
@given(ts=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=20))
def test_alpha_non_increasing_and_in_unit_interval(name, ts):
    schedule = SCHEDULES.build(name)
    t = torch.tensor(sorted(ts), dtype=torch.float64)
    alpha = schedule.alpha(t)
    assert ((alpha >= 0) & (alpha <= 1)).all()
    assert (alpha[1:] <= alpha[:-1] + 1e-12).all()


@pytest.mark.parametrize("name", NAMES)
@given(t=st.floats(1e-4, 1.0 - 1e-4))
def test_weight_is_non_negative_and_matches_derivative(name, t):
    schedule = SCHEDULES.build(name)
    tt = torch.tensor([t], dtype=torch.float64)
    weight = schedule.weight(tt)
    assert (weight >= 0).all()
    expected = -schedule.alpha_derivative(tt) / (1 - schedule.alpha(tt))
    torch.testing.assert_close(weight, expected, rtol=1e-6, atol=1e-9)
    # alpha_derivative agrees with a central difference of alpha
    h = 1e-6
    numeric = (schedule.alpha(tt + h) - schedule.alpha(tt - h)) / (2 * h)
    torch.testing.assert_close(schedule.alpha_derivative(tt), numeric, rtol=1e-4, atol=1e-6)


def test_loglinear_weight_is_one_over_t():
    t = torch.tensor([0.1, 0.5, 1.0])
    torch.testing.assert_close(SCHEDULES.build("loglinear").weight(t), 1 / t)


def test_polynomial_rejects_non_positive_power():
    with pytest.raises(ValueError, match=r"power must be > 0 \(got 0\)"):
        SCHEDULES.build("polynomial", power=0)
