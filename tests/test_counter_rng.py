"""The counter-based RNG: parity with a pure-Python SplitMix64, range, uniformity, independence of
adjacent counters/keys/labels, and row independence of RowStreams."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.counter_rng import GOLDEN, RowStreams, as_row_streams, bits_to_unit, fold, gumbel, mix64, uniform

U64 = (1 << 64) - 1
INT64 = st.integers(-(2**63), 2**63 - 1)


def _mix64_reference(z: int) -> int:
    """SplitMix64's finaliser on Python ints (unsigned 64-bit), as published."""
    z &= U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & U64
    return z ^ (z >> 31)


def _signed(z: int) -> int:
    return z - (1 << 64) if z >= 1 << 63 else z


@given(values=st.lists(INT64, min_size=1, max_size=16))
def test_mix64_matches_the_unsigned_reference_bit_for_bit(values):
    # torch's int64 multiply wraps and its >> is arithmetic: the masks must make it uint64 maths
    out = mix64(torch.tensor(values, dtype=torch.int64)).tolist()
    assert out == [_signed(_mix64_reference(v)) for v in values]


@given(key=INT64, count=st.integers(1, 40))
def test_uniform_is_splitmix64s_output_sequence(key, count):
    u = uniform(torch.tensor([key]), count)[0]
    golden = GOLDEN & U64
    expected = [((_mix64_reference(key + (i + 1) * golden) >> 12) + 0.5) / 2**52 for i in range(count)]
    assert u.tolist() == expected


def test_uniforms_are_never_zero_or_one_and_gumbel_is_finite():
    extremes = torch.tensor([0, -1, 2**63 - 1, -(2**63), 4095, -4096], dtype=torch.int64)
    u = bits_to_unit(extremes)
    assert u.dtype == torch.float64 and ((u > 0) & (u < 1)).all()
    assert u.min() == 2.0**-53 and u.max() == 1 - 2.0**-53
    assert torch.isfinite(-torch.log(-torch.log(u))).all()
    assert torch.isfinite(gumbel(torch.arange(-500, 500), 64)).all()


def _chi_square(u: torch.Tensor, bins: int) -> float:
    counts = torch.bincount((u * bins).long().clamp(max=bins - 1), minlength=bins).double()
    expected = u.numel() / bins
    return float(((counts - expected) ** 2 / expected).sum())


def _ks(u: torch.Tensor) -> float:
    x = u.sort().values
    n = x.numel()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - x, x - (i - 1) / n).max())


def _pairs_chi_square(a: torch.Tensor, b: torch.Tensor, bins: int) -> float:
    cell = (a * bins).long() * bins + (b * bins).long()
    return _chi_square((cell.double() + 0.5) / bins**2, bins * bins)


def _chi_bound(df: int) -> float:
    return df + 5 * math.sqrt(2 * df)  # ~5 sd above the mean: fixed draws, not flaky


@pytest.mark.parametrize(
    "draws",
    [
        pytest.param(lambda: uniform(torch.tensor([12345]), 200_000)[0], id="adjacent-counters"),
        pytest.param(lambda: uniform(torch.arange(200_000), 1)[:, 0], id="adjacent-keys"),
        pytest.param(
            lambda: uniform(fold(torch.tensor(7), torch.arange(200_000)), 1)[:, 0], id="adjacent-labels"
        ),
        pytest.param(lambda: RowStreams.from_seeds(range(200_000)).uniform(1)[:, 0], id="adjacent-seeds"),
    ],
)
def test_uniform_and_adjacent_draws_independent(draws):
    u = draws()
    assert _ks(u) < 1.95 / math.sqrt(u.numel())  # KS critical value at p = 0.001
    assert _chi_square(u, 100) < _chi_bound(99)
    # consecutive draws: the 2-D histogram of (u_i, u_{i+1}) is flat and their correlation ~ 0
    assert _pairs_chi_square(u[:-1], u[1:], 16) < _chi_bound(255)
    assert abs(float(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1])) < 5 / math.sqrt(u.numel())


def test_gumbel_has_the_gumbel_mean_and_variance():
    g = gumbel(torch.arange(1000), 200).flatten()
    assert abs(float(g.mean()) - 0.5772156649) < 0.01
    assert abs(float(g.var()) - math.pi**2 / 6) < 0.02


@given(seeds=st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=6), row=st.integers(0, 5))
def test_a_row_stream_does_not_depend_on_the_other_rows(seeds, row):
    row %= len(seeds)
    streams = RowStreams.from_seeds(seeds).child(3, 1, 4)
    alone = RowStreams.from_seeds([seeds[row]]).child(3, 1, 4)
    assert torch.equal(streams.uniform(9)[row], alone.uniform(9)[0])
    assert torch.equal(streams.rows([row]).keys, alone.keys)


def test_labels_name_distinct_streams_and_per_row_labels_fold_row_by_row():
    streams = RowStreams.from_seeds([1, 2, 3])
    assert not torch.equal(streams.child(1, 2).uniform(4), streams.child(2, 1).uniform(4))
    per_row = streams.child(torch.tensor([5, 6, 7]))
    for r, label in enumerate((5, 6, 7)):
        assert torch.equal(per_row.keys[r], streams.rows([r]).child(label).keys[0])
    # the same seed gives the same stream; seeds >= 2^63 are their 64 bits
    assert torch.equal(RowStreams.from_seeds([2**64 - 1]).keys, RowStreams.from_seeds([-1]).keys)


def test_generators_give_one_seed_each_and_bad_inputs_are_named():
    a = as_row_streams([torch.Generator().manual_seed(s) for s in (4, 5)])
    b = as_row_streams([torch.Generator().manual_seed(s) for s in (4, 5)])
    assert torch.equal(a.keys, b.keys) and a.batch == 2
    with pytest.raises(
        ValueError, match=r"expected a RowStreams or one torch.Generator per row \(got NoneType\)"
    ):
        as_row_streams([None])
    with pytest.raises(ValueError, match=r"keys must be a \(batch,\) int64 tensor"):
        RowStreams(torch.zeros(2))
