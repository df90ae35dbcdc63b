"""Rotary embedding: rotate-half layout, base 10000, relative-position invariance."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.models.rotary import Rotary, apply_rotary, rotate_half


def test_rotate_half_layout():
    assert rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist() == [-3.0, -4.0, 1.0, 2.0]


def test_pairs_are_i_and_i_plus_half_with_base_10000():
    rotary = Rotary(4)
    assert torch.allclose(rotary.inv_freq, torch.tensor([1.0, 1.0 / 100.0]))
    cos, sin = rotary(torch.tensor([3]))
    x = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 4)  # (batch, heads, length, head_dim)
    out = apply_rotary(x, cos, sin).flatten()
    torch.testing.assert_close(out, torch.tensor([math.cos(3.0), 0.0, math.sin(3.0), 0.0]))


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 100))
def test_scores_depend_only_on_relative_position(p, k, shift):
    rotary = Rotary(8)
    generator = torch.Generator().manual_seed(0)
    q, key = torch.randn(2, 1, 1, 1, 8, generator=generator, dtype=torch.float64)

    def score(i, j):
        cos_i, sin_i = rotary(torch.tensor([i]))
        cos_j, sin_j = rotary(torch.tensor([j]))
        return (
            apply_rotary(q, cos_i.double(), sin_i.double())
            * apply_rotary(key, cos_j.double(), sin_j.double())
        ).sum()

    torch.testing.assert_close(score(p, k), score(p + shift, k + shift), rtol=1e-4, atol=1e-4)


def test_inv_freq_is_a_persistent_buffer():
    assert "inv_freq" in Rotary(64).state_dict()
