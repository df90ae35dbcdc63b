"""The mask functions against REFERENCE.md's rules written as plain Python loops."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.attention import block_causal_mask, check_block_sizes, training_mask


def reference_training_mask(n: int, bs: int) -> torch.Tensor:
    """REFERENCE.md "Vectorised block-diffusion training mask", one query/key pair at a time."""

    def block(i):
        return (i - n) // bs if i >= n else i // bs

    out = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    for q in range(2 * n):
        for k in range(2 * n):
            q_clean, k_clean = q >= n, k >= n
            diagonal = block(q) == block(k) and q_clean == k_clean
            offset = block(q) > block(k) and k_clean and not q_clean
            causal = block(q) >= block(k) and q_clean and k_clean
            out[q, k] = diagonal or offset or causal
    return out


@st.composite
def length_and_sizes(draw):
    length = draw(st.sampled_from([1, 2, 4, 6, 8, 12, 16]))
    divisors = [d for d in range(1, length + 1) if length % d == 0]
    sizes = draw(st.lists(st.sampled_from(divisors), min_size=1, max_size=4))
    return length, sizes


@given(length_and_sizes())
def test_training_mask_matches_reference_rules_per_row(case):
    length, sizes = case
    dense = training_mask(length, torch.tensor(sizes)).dense()
    assert dense.shape == (len(sizes), 1, 2 * length, 2 * length)
    for row, size in enumerate(sizes):
        assert torch.equal(dense[row, 0], reference_training_mask(length, size))


def test_scalar_block_size_broadcasts_over_the_batch():
    mask = training_mask(8, 4)
    assert mask.batch is None and mask.dense().shape == (1, 1, 16, 16)
    assert torch.equal(mask.dense()[0, 0], reference_training_mask(8, 4))


def test_global_block_noisy_half_is_full_attention_over_the_noisy_half():
    dense = training_mask(8, 8).dense()[0, 0]
    assert dense[:8, :8].all() and not dense[:8, 8:].any()


@given(st.integers(1, 24), st.integers(1, 30))
def test_block_causal_mask_rule(length, block_size):
    dense = block_causal_mask(length, block_size).dense()[0, 0]
    expected = torch.tensor(
        [[k // block_size <= q // block_size for k in range(length)] for q in range(length)]
    )
    assert torch.equal(dense, expected)


def test_dense_form_is_built_once_per_device():
    mask = block_causal_mask(8, 2)
    assert mask.dense() is mask.dense()


def test_block_sizes_must_divide_length():
    with pytest.raises(
        ValueError, match=r"block_sizes must be positive and divide length \(got \[3, 4\], 8\)"
    ):
        check_block_sizes(8, torch.tensor([4, 3]))
    with pytest.raises(ValueError, match="must be positive"):
        check_block_sizes(8, 0)


def test_block_sizes_shape_and_dtype_are_checked():
    with pytest.raises(ValueError, match=r"shape \(batch,\) = \(3,\) \(got \(2,\)\)"):
        check_block_sizes(8, torch.tensor([4, 4]), batch=3)
    with pytest.raises(TypeError, match="block_sizes must hold integers"):
        check_block_sizes(8, torch.tensor([4.0]))
    with pytest.raises(TypeError, match="block_sizes must be an int"):
        check_block_sizes(8, 4.0)
