"""Every registered attention backend equals the eager reference, for the three kinds of mask."""

import pytest
import torch

from dind.attention import ATTENTION_BACKENDS, AttentionBackend, block_causal_mask, training_mask

NAMES = ATTENTION_BACKENDS.names()
CUDA = torch.cuda.is_available()


def masks(length: int, batch: int):
    """(kind, query_length, mask) for full, block-causal and per-row training masks."""
    return [
        ("full", length, None),
        ("block_causal", length, block_causal_mask(length, 4)),
        ("training", 2 * length, training_mask(length, torch.tensor([2, 4, length][:batch]))),
    ]


def inputs(batch, length, generator, *, heads=2, head_dim=8, key_length=None):
    def draw(n):
        return torch.randn(batch, heads, n, head_dim, generator=generator)

    return draw(length), draw(key_length or length), draw(key_length or length)


def skip_unsupported(name):
    if name == "flash":
        pytest.skip("flash-attn needs CUDA; tests/models/test_gpu.py covers it")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["full", "block_causal", "training"])
def test_backend_matches_eager(name, kind, generator):
    skip_unsupported(name)
    backend = ATTENTION_BACKENDS.build(name)
    assert isinstance(backend, AttentionBackend)
    _, query_length, mask = {k: (k, n, m) for k, n, m in masks(8, 3)}[kind]
    query, key, value = inputs(3, query_length, generator)
    with torch.no_grad():
        out = backend(query, key, value, mask)
    expected = ATTENTION_BACKENDS.build("eager")(query, key, value, mask)
    assert out.shape == query.shape and out.dtype == query.dtype
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_unmasked_block_queries_over_longer_keys(name, generator):
    """The cached call: a few queries attend to every key (cache prefix + the block itself)."""
    skip_unsupported(name)
    query, key, value = inputs(2, 4, generator, key_length=12)
    with torch.no_grad():
        out = ATTENTION_BACKENDS.build(name)(query, key, value, None)
    torch.testing.assert_close(
        out, ATTENTION_BACKENDS.build("eager")(query, key, value, None), rtol=1e-5, atol=1e-5
    )


def test_eager_is_softmax_attention(generator):
    query, key, value = inputs(1, 5, generator)
    mask = block_causal_mask(5, 2)
    scores = query @ key.transpose(-1, -2) / 8**0.5
    scores = scores.masked_fill(~mask.dense(), float("-inf"))
    expected = torch.softmax(scores, dim=-1) @ value
    torch.testing.assert_close(ATTENTION_BACKENDS.build("eager")(query, key, value, mask), expected)


def test_mask_is_respected(generator):
    """Changing a key the mask hides does not change the output."""
    query, key, value = inputs(1, 8, generator)
    mask = block_causal_mask(8, 4)
    eager = ATTENTION_BACKENDS.build("eager")
    value2 = value.clone()
    value2[:, :, 4:] += 1.0
    torch.testing.assert_close(
        eager(query, key, value, mask)[:, :, :4], eager(query, key, value2, mask)[:, :, :4]
    )


def test_shape_mismatch_names_both_shapes(generator):
    query, key, value = inputs(1, 8, generator)
    with pytest.raises(ValueError, match=r"mask \(query_length, key_length\) must match the inputs"):
        ATTENTION_BACKENDS.build("sdpa")(query, key, value, block_causal_mask(6, 2))
    with pytest.raises(ValueError, match="query and key must agree"):
        ATTENTION_BACKENDS.build("eager")(query, key[:, :1], value[:, :1], None)


def test_flash_refuses_masks():
    from dind.attention.backends.flash import FlashAttention

    query = torch.zeros(1, 1, 4, 8)
    with pytest.raises(ValueError, match="'flash' backend supports only calls without a mask"):
        FlashAttention()(query, query, query, block_causal_mask(4, 2))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["full", "block_causal", "training"])
def test_compiled_flex_matches_eager(kind, generator):
    backend = ATTENTION_BACKENDS.build("flex", compile=True)
    _, query_length, mask = {k: (k, n, m) for k, n, m in masks(16, 3)}[kind]
    query, key, value = inputs(3, query_length, generator, head_dim=16)
    with torch.no_grad():
        out = backend(query, key, value, mask)
    torch.testing.assert_close(
        out, ATTENTION_BACKENDS.build("eager")(query, key, value, mask), rtol=1e-4, atol=1e-4
    )
