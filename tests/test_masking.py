"""The forward process q(x_t | x): per-block times, frozen positions, resampling into a range."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.masking import block_times_to_positions, mask_tokens, mask_tokens_in_range, per_row_block_sizes
from dind.schedules import SCHEDULES, LogLinearSchedule

MASK = 50
LINEAR = LogLinearSchedule()


def _tokens(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, MASK, (batch, length), generator=generator)


def _frozen(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(batch, length, generator=generator) < 0.3


@st.composite
def block_case(draw):
    """(batch, length, per-row block sizes) with every size dividing length."""
    length = draw(st.sampled_from([4, 8, 12, 16, 32]))
    divisors = [d for d in range(1, length + 1) if length % d == 0]
    batch = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.sampled_from(divisors), min_size=batch, max_size=batch))
    return batch, length, torch.tensor(sizes)


def _block_fractions(masked: torch.Tensor, eligible: torch.Tensor, sizes: torch.Tensor):
    """Yield (masked count, eligible count) for every block of every row."""
    for row, size in enumerate(sizes.tolist()):
        for start in range(0, masked.shape[1], size):
            span = slice(start, start + size)
            yield int(masked[row, span].sum()), int(eligible[row, span].sum())


# ---- per_row_block_sizes / block_times_to_positions ----


def test_per_row_block_sizes_broadcasts_an_int():
    assert per_row_block_sizes(4, 3, 16).tolist() == [4, 4, 4]


@pytest.mark.parametrize("bad", [5, 0, torch.tensor([4, 5])])
def test_per_row_block_sizes_rejects_non_divisors(bad):
    with pytest.raises(ValueError, match=r"every block size must divide length \(got \[.*\], length 12\)"):
        per_row_block_sizes(bad, 2, 12)


def test_per_row_block_sizes_rejects_a_wrong_shape():
    with pytest.raises(
        ValueError, match=r"block_sizes must be an int or a \(batch,\) tensor \(got shape \(3,\)"
    ):
        per_row_block_sizes(torch.tensor([4, 4, 4]), 2, 16)


@given(block_case(), st.integers(0, 2**31))
def test_block_times_are_constant_inside_each_block(case, seed):
    batch, length, sizes = case
    n_blocks = length // int(sizes.min())
    t_blocks = torch.rand(batch, n_blocks, generator=torch.Generator().manual_seed(seed))
    t = block_times_to_positions(t_blocks, sizes, length)
    assert t.shape == (batch, length)
    for row, size in enumerate(sizes.tolist()):
        expected = t_blocks[row, : length // size].repeat_interleave(size)
        assert torch.equal(t[row], expected)


def test_block_times_need_enough_columns():
    with pytest.raises(
        ValueError, match=r"t_blocks must have >= length // min\(block_sizes\) = 4 columns \(got 3\)"
    ):
        block_times_to_positions(torch.zeros(2, 3), torch.tensor([4, 8]), 16)


# ---- mask_tokens ----


@pytest.mark.parametrize("schedule", SCHEDULES.names())
@given(seed=st.integers(0, 2**31), frozen_rank=st.sampled_from([None, 1, 2]))
def test_mask_tokens_invariants(schedule, seed, frozen_rank):
    generator = torch.Generator().manual_seed(seed)
    x = _tokens(3, 16, generator)
    t = torch.rand(3, 16, generator=generator, dtype=torch.float64)
    frozen = None if frozen_rank is None else _frozen(3, 16, generator)
    if frozen_rank == 1:
        frozen = frozen[0]
    out = mask_tokens(
        x, t, schedule=SCHEDULES.build(schedule), mask_id=MASK, frozen=frozen, generator=generator
    )
    assert out.noisy.shape == x.shape and out.noisy.dtype == torch.long
    assert out.masked.shape == x.shape and out.masked.dtype == torch.bool
    assert torch.equal(out.noisy == MASK, out.masked)
    assert torch.equal(out.noisy[~out.masked], x[~out.masked])
    if frozen is not None:
        assert not (out.masked & frozen.expand(3, 16)).any()


@pytest.mark.parametrize("schedule", SCHEDULES.names())
def test_mask_tokens_endpoints(schedule, generator):
    x = _tokens(4, 32, generator)
    frozen = _frozen(4, 32, generator)
    kwargs = dict(schedule=SCHEDULES.build(schedule), mask_id=MASK, frozen=frozen, generator=generator)
    assert not mask_tokens(x, torch.zeros(4, 32), **kwargs).masked.any()
    assert torch.equal(mask_tokens(x, torch.ones(4, 32), **kwargs).masked, ~frozen)


def test_mask_tokens_respects_each_blocks_time(generator):
    # alternating blocks of 4 at t = 0 and t = 1: exactly the t = 1 blocks are masked
    t_blocks = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    t = block_times_to_positions(t_blocks, 4, 16)
    out = mask_tokens(_tokens(2, 16, generator), t, schedule=LINEAR, mask_id=MASK, generator=generator)
    assert torch.equal(out.masked, t == 1.0)


def test_mask_tokens_rate_matches_one_minus_alpha(generator):
    # 1 - alpha(0.3) = 0.3 under the log-linear schedule; 20000 Bernoulli draws, 4-sigma bound
    n, p = 20000, 0.3
    out = mask_tokens(
        torch.zeros(1, n, dtype=torch.long),
        torch.full((1, n), p),
        schedule=LINEAR,
        mask_id=MASK,
        generator=generator,
    )
    assert abs(int(out.masked.sum()) - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_mask_tokens_is_deterministic_given_the_generator():
    x = torch.zeros(2, 64, dtype=torch.long)
    t = torch.full((2, 64), 0.5)
    a = mask_tokens(x, t, schedule=LINEAR, mask_id=MASK, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(x, t, schedule=LINEAR, mask_id=MASK, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.masked, b.masked)


def test_mask_tokens_shape_errors():
    x = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"t must have the shape of x \(got \(2, 4\), \(2, 8\)\)"):
        mask_tokens(x, torch.zeros(2, 4), schedule=LINEAR, mask_id=MASK)
    with pytest.raises(
        ValueError, match=r"frozen must be \(batch, length\) or \(length,\) = \(2, 8\) \(got \(7,\)\)"
    ):
        mask_tokens(
            x, torch.zeros(2, 8), schedule=LINEAR, mask_id=MASK, frozen=torch.zeros(7, dtype=torch.bool)
        )


# ---- mask_tokens_in_range ----


@given(
    case=block_case(),
    seed=st.integers(0, 2**31),
    bounds=st.sampled_from([(0.0, 1.0), (0.25, 0.75), (0.5, 1.0), (0.0, 0.5), (0.3, 0.8)]),
    with_frozen=st.booleans(),
)
def test_in_range_keeps_every_blocks_fraction_in_bounds(case, seed, bounds, with_frozen):
    batch, length, sizes = case
    low, high = bounds
    generator = torch.Generator().manual_seed(seed)
    x = _tokens(batch, length, generator)
    frozen = _frozen(batch, length, generator) if with_frozen else None
    eligible = torch.ones(batch, length, dtype=torch.bool) if frozen is None else ~frozen
    t_blocks = torch.rand(batch, length // int(sizes.min()), generator=generator)
    try:
        out = mask_tokens_in_range(
            x,
            t_blocks,
            sizes,
            schedule=LINEAR,
            mask_id=MASK,
            low=low,
            high=high,
            frozen=frozen,
            generator=generator,
        )
    except ValueError as error:
        # only when some non-empty block has no count k with k / n in [low, high]
        assert "no masked fraction k/n lies in [low, high]" in str(error)
        counts = {n for _, n in _block_fractions(eligible, eligible, sizes) if n > 0}
        assert any(not any(low <= k / n <= high for k in range(n + 1)) for n in counts)
        return
    assert torch.equal(out.noisy == MASK, out.masked)
    assert torch.equal(out.noisy[~out.masked], x[~out.masked])
    assert not (out.masked & ~eligible).any()
    for k, n in _block_fractions(out.masked, eligible, sizes):
        assert (n == 0 and k == 0) or low - 1e-12 <= k / n <= high + 1e-12


def test_in_range_block_times_drive_the_blocks(generator):
    # with the full range [0, 1], t = 0 masks nothing and t = 1 masks every eligible position
    frozen = torch.zeros(2, 16, dtype=torch.bool)
    frozen[:, 0] = True
    t_blocks = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    out = mask_tokens_in_range(
        _tokens(2, 16, generator),
        t_blocks,
        4,
        schedule=LINEAR,
        mask_id=MASK,
        low=0.0,
        high=1.0,
        frozen=frozen,
        generator=generator,
    )
    expected = (block_times_to_positions(t_blocks, 4, 16) == 1.0) & ~frozen
    assert torch.equal(out.masked, expected)


def test_in_range_count_law_is_the_truncated_binomial(generator):
    # blocks of 4 at t = 0.5 limited to [0.25, 0.75]: k in {1, 2, 3} with weights 4 : 6 : 4
    rows, blocks = 500, 8
    out = mask_tokens_in_range(
        torch.zeros(rows, 4 * blocks, dtype=torch.long),
        torch.full((rows, blocks), 0.5),
        4,
        schedule=LINEAR,
        mask_id=MASK,
        low=0.25,
        high=0.75,
        generator=generator,
    )
    k = out.masked.view(rows * blocks, 4).sum(-1)
    n = rows * blocks
    for count, p in {0: 0.0, 1: 4 / 14, 2: 6 / 14, 3: 4 / 14, 4: 0.0}.items():
        observed = int((k == count).sum())
        assert abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1e-9, (count, observed, n * p)


def test_in_range_chooses_positions_uniformly_inside_a_block(generator):
    rows = 4000
    out = mask_tokens_in_range(
        torch.zeros(rows, 8, dtype=torch.long),
        torch.full((rows, 2), 0.5),
        4,
        schedule=LINEAR,
        mask_id=MASK,
        low=0.5,
        high=0.5,
        generator=generator,
    )
    assert (out.masked.view(rows, 2, 4).sum(-1) == 2).all()
    p = 0.5  # each of the 4 positions is one of the 2 chosen with probability 1/2
    frequency = out.masked.sum(0).double()
    assert ((frequency - rows * p).abs() <= 4 * math.sqrt(rows * p * (1 - p))).all()


def test_in_range_mixed_block_sizes_per_row(generator):
    # row 0: blocks of 2 (8 blocks); row 1: one block of 16 -- only its first time is used
    t_blocks = torch.tensor([[1.0, 0.0] * 4, [1.0] + [0.0] * 7])
    out = mask_tokens_in_range(
        _tokens(2, 16, generator),
        t_blocks,
        torch.tensor([2, 16]),
        schedule=LINEAR,
        mask_id=MASK,
        low=0.0,
        high=1.0,
        generator=generator,
    )
    assert out.masked[0].tolist() == [True, True, False, False] * 4
    assert out.masked[1].all()


@pytest.mark.parametrize(
    ("block", "low", "high", "sizes"), [(4, 0.3, 0.45, r"\[4\]"), (2, 0.6, 0.9, r"\[2\]")]
)
def test_in_range_infeasible_range_is_a_clear_error(block, low, high, sizes):
    with pytest.raises(
        ValueError,
        match=rf"no masked fraction k/n lies in \[low, high\] = \[{low}, {high}\] "
        rf"for blocks with n = {sizes} eligible positions",
    ):
        mask_tokens_in_range(
            torch.zeros(2, 8, dtype=torch.long),
            torch.full((2, 8 // block), 0.5),
            block,
            schedule=LINEAR,
            mask_id=MASK,
            low=low,
            high=high,
        )


def test_in_range_infeasibility_counts_eligible_positions_not_block_size():
    # a block of 8 with 4 frozen positions has n = 4 eligible: [0.3, 0.45] holds no k / 4
    frozen = torch.tensor([True] * 4 + [False] * 4)
    with pytest.raises(ValueError, match=r"for blocks with n = \[4\] eligible positions"):
        mask_tokens_in_range(
            torch.zeros(1, 8, dtype=torch.long),
            torch.full((1, 1), 0.5),
            8,
            schedule=LINEAR,
            mask_id=MASK,
            low=0.3,
            high=0.45,
            frozen=frozen,
        )


def test_in_range_fully_frozen_block_is_not_an_error(generator):
    frozen = torch.tensor([True] * 4 + [False] * 4)
    out = mask_tokens_in_range(
        torch.zeros(1, 8, dtype=torch.long),
        torch.full((1, 2), 0.5),
        4,
        schedule=LINEAR,
        mask_id=MASK,
        low=0.5,
        high=0.5,
        frozen=frozen,
        generator=generator,
    )
    assert not out.masked[0, :4].any()
    assert int(out.masked[0, 4:].sum()) == 2
