import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.schedules import TIME_SAMPLERS, StratifiedTimeSampler

ranges = st.tuples(st.floats(0.0, 0.99), st.floats(0.01, 1.0)).filter(lambda r: r[0] + 1e-3 < r[1])


@pytest.mark.parametrize("name", TIME_SAMPLERS.names())
@given(batch=st.integers(1, 8), blocks=st.integers(1, 16), bounds=ranges, seed=st.integers(0, 2**31))
def test_shape_and_range(name, batch, blocks, bounds, seed):
    low, high = bounds
    t = TIME_SAMPLERS.build(name).sample(
        batch, blocks, low=low, high=high, generator=torch.Generator().manual_seed(seed)
    )
    assert t.shape == (batch, blocks)
    assert (t >= torch.tensor(low, dtype=torch.float32)).all() and (t < high).all()


@given(batch=st.integers(1, 8), blocks=st.integers(1, 16), seed=st.integers(0, 2**31))
def test_stratified_covers_each_stratum_once(batch, blocks, seed):
    t = StratifiedTimeSampler().sample(
        batch, blocks, low=0.0, high=1.0, generator=torch.Generator().manual_seed(seed)
    )
    n = batch * blocks
    strata = torch.sort((t.double().flatten() * n).floor().long()).values
    assert strata.tolist() == list(range(n))


@pytest.mark.parametrize("name", TIME_SAMPLERS.names())
def test_same_generator_seed_same_times(name):
    sampler = TIME_SAMPLERS.build(name)
    a = sampler.sample(4, 8, low=0.2, high=0.9, generator=torch.Generator().manual_seed(7))
    b = sampler.sample(4, 8, low=0.2, high=0.9, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("low, high", [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.1), (0.8, 0.3)])
def test_invalid_range_names_the_rule(low, high):
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        StratifiedTimeSampler().sample(2, 2, low=low, high=high)
