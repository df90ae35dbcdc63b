"""CUDA checks: every backend against eager in bf16 autocast, and the cache/training parity on GPU."""

import pytest
import torch

from dind.attention import ATTENTION_BACKENDS, block_causal_mask, training_mask
from dind.models import build

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def flash_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def backend_cases():
    cases = [("sdpa", {}), ("flex", {}), ("flex", {"compile": True})]
    return cases + [("flash", {})]


@pytest.mark.parametrize(("name", "options"), backend_cases())
@pytest.mark.parametrize("kind", ["full", "block_causal", "training", "cached"])
def test_backend_matches_eager_in_bf16(name, options, kind):
    if name == "flash" and not flash_available():
        pytest.skip("flash-attn is not installed")
    if name == "flash" and kind in ("block_causal", "training"):
        pytest.skip("flash supports only mask-free calls (tested to raise on CPU)")
    generator = torch.Generator(device="cuda").manual_seed(0)
    length, batch = 256, 3
    query_length = 2 * length if kind == "training" else length
    key_length = query_length if kind != "cached" else 3 * length
    mask = {
        "full": None,
        "cached": None,
        "block_causal": block_causal_mask(length, 16),
        "training": training_mask(length, torch.tensor([4, 16, length], device="cuda")),
    }[kind]

    def draw(n):
        return torch.randn(batch, 4, n, 64, generator=generator, device="cuda", dtype=torch.bfloat16)

    query, key, value = draw(query_length), draw(key_length), draw(key_length)
    with torch.no_grad():
        out = ATTENTION_BACKENDS.build(name, **options)(query, key, value, mask)
        expected = ATTENTION_BACKENDS.build("eager")(query, key, value, mask)
    assert out.dtype == torch.bfloat16 and out.shape == query.shape
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_model_parity_on_cuda_under_autocast(backend):
    generator = torch.Generator().manual_seed(0)
    model = build(
        "micro", init="random", generator=generator, dropout=0.0, attn_backend=backend, device="cuda"
    ).eval()
    clean = torch.randint(0, 257, (4, 64), generator=generator).cuda()
    noisy = torch.where(torch.rand(clean.shape, generator=generator).cuda() < 0.5, 257, clean)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        reference = model.logits(clean, block_size=8)
        cache = model.new_cache(4, 64)
        for start in range(0, 56, 8):
            model.append_to_cache(clean[:, start : start + 8], cache=cache, start=start)
        cached = model.cached_logits(clean[:, 56:], cache=cache, start=56)
        vectorised = model.training_logits(noisy, clean, 64)
        plain = model.logits(noisy)
    assert cache.dtype == torch.bfloat16 and cached.dtype == torch.float32
    torch.testing.assert_close(cached, reference[:, 56:], rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(vectorised, plain, rtol=5e-2, atol=5e-2)
