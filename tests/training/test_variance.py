import pytest
import torch

from dind.training import (
    FULL_RANGE,
    Objective,
    candidate_intervals,
    clipped_schedule_search,
    sampling_interval,
    set_sampling_interval,
)
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS


def test_bd3lm_search_space_has_36_intervals():
    intervals = candidate_intervals()
    assert len(intervals) == 36 and len(set(intervals)) == 36
    assert intervals[-1] == FULL_RANGE == (1e-3, 1.0)
    assert all(1e-3 <= low < high <= 1.0 for low, high in intervals)
    widths = {round(high - max(low, 0.0) if low > 1e-3 else high, 6) for low, high in intervals[:-1]}
    assert widths == {0.5, 0.6, 0.7, 0.8, 0.9}
    assert (0.5, 1.0) in intervals and (0.1, 1.0) in intervals and (1e-3, 0.9) in intervals


def test_widths_must_be_multiples_of_the_step():
    with pytest.raises(ValueError, match="multiples of step"):
        candidate_intervals(widths=(0.33,))


def test_search_writes_the_argmin_into_the_model(micro, generator, random_tokens):
    batches = [random_tokens(micro, 2, 32, generator) for _ in range(2)]
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=4))
    intervals = [(1e-3, 1.0), (0.5, 1.0), (0.2, 0.7)]
    before = sampling_interval(micro)
    result = clipped_schedule_search(micro, batches, objective, block_size=4, intervals=intervals, seed=3)
    again = clipped_schedule_search(micro, batches, objective, block_size=4, intervals=intervals, seed=3)
    assert torch.equal(result.variances, again.variances)  # common random numbers: deterministic
    assert result.variances.shape == (3,) and (result.variances >= 0).all()
    assert result.best == intervals[int(result.variances.argmin())]
    try:
        set_sampling_interval(micro, result.best)
        low, high = sampling_interval(micro)
        assert (low, high) == pytest.approx(result.best)
        assert "sampling_eps_min" in dict(micro.named_buffers()) or "sampling_eps_min" in micro.state_dict()
    finally:
        set_sampling_interval(micro, before)


def test_uncounted_batches_do_not_change_the_statistics(micro, generator, random_tokens):
    batches = [random_tokens(micro, 2, 32, generator) for _ in range(2)]
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=8))
    intervals = [(1e-3, 1.0), (0.5, 1.0)]
    first = clipped_schedule_search(micro, batches[:1], objective, block_size=8, intervals=intervals)
    padded = clipped_schedule_search(
        micro, batches, objective, block_size=8, intervals=intervals, counted=[True, False]
    )
    torch.testing.assert_close(first.variances, padded.variances)


def test_narrow_late_interval_has_lower_variance_for_a_uniform_model():
    """With uniform logits the per-block loss is log(V-1) * (masked fraction) / t: its variance
    grows as t approaches 0, so the full range must be worse than (0.5, 1)."""

    class Uniform(torch.nn.Module):
        vocab_size, mask_id = 11, 10

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def logits(self, tokens, *, block_size=None):
            return torch.zeros(*tokens.shape, 11) + self.w

        def training_logits(self, noisy, clean, block_sizes):
            return self.logits(noisy)

    batches = [torch.zeros(8, 32, dtype=torch.long)] * 2
    objective = Objective(
        block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=4), freeze_first_token=False
    )
    result = clipped_schedule_search(
        Uniform(), batches, objective, block_size=4, intervals=[FULL_RANGE, (0.5, 1.0)]
    )
    assert result.best == (0.5, 1.0)


def test_interval_validated(micro):
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        set_sampling_interval(micro, (0.6, 0.5))
