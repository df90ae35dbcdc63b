"""DiT forward paths against each other: cache vs no cache, vectorised training vs block by block."""

import pytest
import torch

from dind.models import Denoiser, DiT, build

LENGTH = 32


@pytest.fixture(scope="module")
def model() -> DiT:
    return build(
        "micro", init="random", generator=torch.Generator().manual_seed(0), dropout=0.0, attn_backend="eager"
    ).eval()


def tokens(generator, batch=3, length=LENGTH):
    return torch.randint(0, 258, (batch, length), generator=generator)


def test_is_a_denoiser(model):
    assert isinstance(model, Denoiser)
    assert (model.vocab_size, model.mask_id) == (258, 257)


def fill_and_check(model, x, cache, block_size):
    """Walk x block by block through the cache; every block's cached logits match the reference."""
    reference = model.logits(x, block_size=block_size)
    for start in range(0, x.shape[1], block_size):
        end = start + block_size
        # the block's content during sampling differs from its final content: use MASKs
        draft = torch.full_like(x[:, start:end], model.mask_id)
        draft_reference = model.logits(torch.cat([x[:, :start], draft], 1), block_size=block_size)[:, start:]
        torch.testing.assert_close(
            model.cached_logits(draft, cache=cache, start=start), draft_reference, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            model.cached_logits(x[:, start:end], cache=cache, start=start),
            reference[:, start:end],
            rtol=1e-4,
            atol=1e-5,
        )
        if end < x.shape[1]:
            model.append_to_cache(x[:, start:end], cache=cache, start=start)
    assert cache.filled == x.shape[1] - block_size


@pytest.mark.parametrize("block_size", [1, 4, 16, LENGTH])
def test_cached_logits_match_block_causal_logits(model, block_size, generator):
    x = tokens(generator)
    with torch.no_grad():
        fill_and_check(model, x, model.new_cache(3, LENGTH), block_size)


def test_stage_change_resets_the_cache_with_a_new_block_size(model, generator):
    x = tokens(generator, batch=2)
    cache = model.new_cache(2, LENGTH)
    with torch.no_grad():
        fill_and_check(model, x, cache, 4)
        cache.reset()
        fill_and_check(model, x, cache, 8)


def test_cached_logits_do_not_change_the_cache(model, generator):
    x = tokens(generator)
    cache = model.new_cache(3, LENGTH)
    model.append_to_cache(x[:, :8], cache=cache, start=0)
    first = model.cached_logits(x[:, 8:16], cache=cache, start=8)
    model.cached_logits(torch.full_like(x[:, 8:16], 5), cache=cache, start=8)
    assert cache.filled == 8
    torch.testing.assert_close(model.cached_logits(x[:, 8:16], cache=cache, start=8), first)


def test_cache_errors_are_clear(model, generator):
    x = tokens(generator)
    cache = model.new_cache(3, LENGTH)
    with pytest.raises(ValueError, match=r"start must equal the cached length.*\(got start 4, cached 0\)"):
        model.cached_logits(x[:, 4:8], cache=cache, start=4)
    with pytest.raises(ValueError, match="fit the cache length"):
        model.append_to_cache(torch.cat([x, x], 1), cache=cache, start=0)


def block_by_block(model, noisy, clean, block_size):
    """Training logits the slow way: for each block b, logits(clean[:b*B] ++ noisy block b)."""
    pieces = []
    for start in range(0, noisy.shape[1], block_size):
        context = torch.cat([clean[:, :start], noisy[:, start : start + block_size]], 1)
        pieces.append(model.logits(context, block_size=block_size)[:, start:])
    return torch.cat(pieces, 1)


def noisy_clean(generator, batch=4):
    clean = tokens(generator, batch=batch)
    masked = torch.rand(clean.shape, generator=generator) < 0.5
    return torch.where(masked, 257, clean), clean


@pytest.mark.parametrize("block_size", [1, 4, LENGTH])
def test_training_logits_match_block_by_block(model, block_size, generator):
    noisy, clean = noisy_clean(generator)
    with torch.no_grad():
        torch.testing.assert_close(
            model.training_logits(noisy, clean, block_size),
            block_by_block(model, noisy, clean, block_size),
            rtol=1e-4,
            atol=1e-5,
        )


def test_training_logits_with_per_row_block_sizes_and_global_rows(model, generator):
    noisy, clean = noisy_clean(generator)
    sizes = torch.tensor([4, LENGTH, 8, 2])
    with torch.no_grad():
        out = model.training_logits(noisy, clean, sizes)
        for row, size in enumerate(sizes.tolist()):
            expected = block_by_block(model, noisy[row : row + 1], clean[row : row + 1], size)
            torch.testing.assert_close(out[row : row + 1], expected, rtol=1e-4, atol=1e-5)


def test_global_block_training_logits_equal_the_plain_forward(model, generator):
    noisy, clean = noisy_clean(generator)
    with torch.no_grad():
        torch.testing.assert_close(
            model.training_logits(noisy, clean, LENGTH),
            model.logits(noisy, block_size=None),
            rtol=1e-4,
            atol=1e-5,
        )


def test_training_logits_backpropagate(generator):
    model = build("micro", init="random", generator=generator, attn_backend="sdpa")
    noisy, clean = noisy_clean(generator, batch=2)
    model.training_logits(noisy, clean, torch.tensor([4, 8])).logsumexp(-1).mean().backward()
    assert all(parameter.grad is not None for parameter in model.parameters())


def test_input_errors_name_the_parameter(model, generator):
    noisy, clean = noisy_clean(generator)
    with pytest.raises(ValueError, match=r"block_sizes must be positive and divide length \(got \[5\], 32\)"):
        model.training_logits(noisy, clean, 5)
    with pytest.raises(ValueError, match=r"shape \(batch,\) = \(4,\)"):
        model.training_logits(noisy, clean, torch.tensor([4, 4]))
    with pytest.raises(ValueError, match="clean must have the noisy shape"):
        model.training_logits(noisy, clean[:, :8], 4)
    with pytest.raises(ValueError, match="block_size must be a positive int or None"):
        model.logits(noisy, block_size=0)
    with pytest.raises(ValueError, match="tokens must be a non-empty"):
        model.logits(noisy.float())
    with pytest.raises(ValueError, match="sigma must be None when config.time_conditioning is False"):
        model.logits(noisy, sigma=torch.zeros(4))


def test_time_conditioning_uses_sigma(generator):
    model = build("micro", init="random", generator=generator, time_conditioning=True, dropout=0.0).eval()
    x = tokens(generator, batch=2)
    zero = model.logits(x)
    torch.testing.assert_close(model.logits(x, sigma=torch.zeros(2)), zero)
    assert not torch.allclose(model.logits(x, sigma=torch.full((2,), 3.0)), zero)
    with pytest.raises(ValueError, match=r"sigma must have shape \(batch,\) = \(2,\)"):
        model.logits(x, sigma=torch.zeros(3))


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_backends_give_the_eager_logits(model, backend, generator):
    noisy, clean = noisy_clean(generator)
    sizes = torch.tensor([4, LENGTH, 8, 2])
    with torch.no_grad():
        expected = (model.logits(noisy, block_size=4), model.training_logits(noisy, clean, sizes))
        other = build(model.config, attn_backend=backend)
        other.load_state_dict(model.state_dict())
        other.eval()
        assert other.config.attn_backend == backend
        actual = (other.logits(noisy, block_size=4), other.training_logits(noisy, clean, sizes))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_set_attention_backend_records_the_name(generator):
    model = build("micro", generator=generator)
    model.set_attention_backend("eager")
    assert model.config.attn_backend == "eager"


def test_cache_takes_the_autocast_dtype(model):
    assert model.new_cache(1, 8).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cache = model.new_cache(2, 16)
        assert cache.dtype == torch.bfloat16
        x = torch.randint(0, 258, (2, 16))
        model.append_to_cache(x[:, :8], cache=cache, start=0)
        logits = model.cached_logits(x[:, 8:], cache=cache, start=8)
        reference = model.logits(x, block_size=8)[:, 8:]
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, reference, rtol=0.05, atol=0.05)


def test_features_then_project_equal_logits_at_any_positions():
    # the output layer applied only where a sampler needs logits (issue: output layer only where needed)
    model = build("micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(3)).eval()
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(4))
    where = torch.rand(2, 16, generator=torch.Generator().manual_seed(5)) < 0.3
    for block_size in (None, 4):
        with torch.no_grad():
            full = model.logits(tokens, block_size=block_size)
            features = model.features(tokens, block_size=block_size)
            torch.testing.assert_close(model.project(features[where]), full[where], rtol=1e-5, atol=1e-5)
    cache, reference = model.new_cache(2, 16), model.new_cache(2, 16)
    for start in range(0, 16, 4):
        block = tokens[:, start : start + 4]
        expected = model.cached_logits(block, cache=reference, start=start)
        got = model.project(model.cached_features(block, cache=cache, start=start))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        model.append_to_cache(block, cache=cache, start=start)
        model.append_to_cache(block, cache=reference, start=start)
