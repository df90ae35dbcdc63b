import re

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.training import Objective
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS

MASK = 99


def _objective(**kwargs):
    bimodal = BLOCK_SIZE_DISTRIBUTIONS.build("bimodal", draft=4, global_size=32, global_probability=0.5)
    return Objective(block_sizes=bimodal, **kwargs)


@given(
    seed=st.integers(0, 2**31),
    mode=st.sampled_from(["batch", "sample"]),
    resample=st.booleans(),
    bounds=st.sampled_from([(1e-3, 1.0), (0.3, 0.8)]),
)
def test_draw_invariants(seed, mode, resample, bounds):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, MASK, (6, 32), generator=generator)
    draw = _objective(block_size_draw=mode, resample=resample).draw(
        clean, mask_id=MASK, low=bounds[0], high=bounds[1], generator=generator
    )
    assert torch.equal(draw.noisy == MASK, draw.masked)
    assert torch.equal(draw.noisy[~draw.masked], clean[~draw.masked])
    assert not draw.masked[:, 0].any()  # BOS is never masked
    assert ((draw.t_positions >= bounds[0] - 1e-6) & (draw.t_positions < bounds[1])).all()
    assert set(draw.block_sizes.tolist()) <= {4, 32}
    if mode == "batch":
        assert (draw.block_sizes == draw.block_sizes[0]).all()
    # one time per block: constant inside each row's blocks
    for row in range(6):
        size = int(draw.block_sizes[row])
        assert (draw.t_positions[row].view(-1, size) == draw.t_positions[row, ::size, None]).all()


def test_same_generator_state_same_draw_and_rows_slice_consistently():
    clean = torch.randint(0, MASK, (4, 32), generator=torch.Generator().manual_seed(0))
    objective = _objective()
    a = objective.draw(clean, mask_id=MASK, low=1e-3, high=1.0, generator=torch.Generator().manual_seed(5))
    b = objective.draw(clean, mask_id=MASK, low=1e-3, high=1.0, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    part = a.rows(slice(2, 4))
    assert torch.equal(part.noisy, a.noisy[2:]) and torch.equal(part.block_sizes, a.block_sizes[2:])


def test_first_token_can_be_masked_when_not_frozen():
    clean = torch.zeros(64, 8, dtype=torch.long)
    objective = Objective(
        block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=8), freeze_first_token=False
    )
    draw = objective.draw(clean, mask_id=MASK, low=0.9, high=1.0, generator=torch.Generator().manual_seed(0))
    assert draw.masked[:, 0].any()


def test_fixed_block_sizes_override_the_mix():
    clean = torch.zeros(3, 32, dtype=torch.long)
    draw = _objective().draw(
        clean, mask_id=MASK, low=0.1, high=0.9, block_sizes=8, generator=torch.Generator().manual_seed(0)
    )
    assert draw.block_sizes.tolist() == [8, 8, 8]
    with pytest.raises(ValueError, match="must divide length"):
        _objective().draw(clean, mask_id=MASK, low=0.1, high=0.9, block_sizes=5)


@pytest.mark.parametrize("bad", ["bimodal:4,32,0.5", None, (4, 32)])
def test_block_sizes_must_be_a_distribution(bad):
    with pytest.raises(
        TypeError, match=rf"block_sizes must be a BlockSizeDistribution .* \(got {re.escape(repr(bad))}\)"
    ):
        Objective(block_sizes=bad)


def test_noise_draws_compare_by_identity():
    objective = _objective()
    draw = objective.draw(torch.zeros(2, 32, dtype=torch.long), mask_id=MASK, low=1e-3, high=1.0)
    copy = draw.rows(slice(None))
    assert draw == draw and draw != copy  # no elementwise tensor comparison (which would raise)
