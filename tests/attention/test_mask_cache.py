"""The training-mask cache: built once per (length, block size), identical results to no cache."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dind import models
from dind.attention import training_mask
from dind.attention.backends import flex as flex_module
from dind.attention.mask_cache import StackedTrainingMask, TrainingMaskCache
from dind.training.loss import DiffusionForward

LENGTH = 16
SIZES = [1, 2, 4, 8, 16]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(SIZES), min_size=1, max_size=5))
def test_cached_dense_mask_equals_a_fresh_one(sizes):
    cache = TrainingMaskCache()
    block_sizes = torch.tensor(sizes)
    fresh = training_mask(LENGTH, block_sizes).dense().expand(len(sizes), -1, -1, -1)
    for _ in range(2):  # the second call is all hits
        cached = cache.get(LENGTH, block_sizes).dense()
        assert torch.equal(cached.expand(len(sizes), -1, -1, -1), fresh)
    assert cache.builds == len(set(sizes))


def test_cached_flex_block_mask_equals_a_whole_batch_build():
    sizes = torch.tensor([4, 16, 4, 2])
    key, device = ("flex", torch.device("cpu"), False), torch.device("cpu")
    fresh = training_mask(LENGTH, sizes).flex_block_mask(key, flex_module.create_block_mask, device)
    stacked = TrainingMaskCache().get(LENGTH, sizes)
    assert isinstance(stacked, StackedTrainingMask)
    built = stacked.flex_block_mask(key, flex_module.create_block_mask, device)
    for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks"):
        assert torch.equal(getattr(built, name), getattr(fresh, name)), name
    generator = torch.Generator().manual_seed(0)
    query, key_, value = (torch.randn(4, 2, 2 * LENGTH, 8, generator=generator) for _ in range(3))
    backend = flex_module.FlexAttention()
    assert torch.allclose(
        backend(query, key_, value, stacked),
        backend(query, key_, value, training_mask(LENGTH, sizes)),
        atol=1e-6,
    )


def test_lru_evicts_the_least_recent_and_refuses_a_bad_size():
    cache = TrainingMaskCache(max_entries=2)
    first = cache.one_size(LENGTH, 4)
    cache.one_size(LENGTH, 8)
    assert cache.one_size(LENGTH, 4) is first  # a hit refreshes 4
    cache.one_size(LENGTH, 2)  # evicts 8
    assert len(cache) == 2 and cache.builds == 3
    cache.one_size(LENGTH, 8)
    assert cache.builds == 4
    with pytest.raises(ValueError, match="max_entries must be a positive integer"):
        TrainingMaskCache(max_entries=0)
    too_many = torch.tensor([1, 2, 4])  # more sizes than entries: built afresh, cache untouched
    assert torch.equal(cache.get(LENGTH, too_many).dense(), training_mask(LENGTH, too_many).dense())
    assert cache.builds == 4 and len(cache) == 2
    with pytest.raises(ValueError, match="divide length"):
        cache.get(LENGTH, torch.tensor([3]))


@pytest.fixture(scope="module")
def flex_micro():
    torch.manual_seed(0)
    return models.build("micro", init="random", attn_backend="flex").eval()


@pytest.mark.parametrize("sizes", [[4, 4, 4], [4, 16, 2]])
def test_second_step_does_not_rebuild_the_flex_mask(flex_micro, monkeypatch, sizes):
    calls = []
    original = flex_module.create_block_mask

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(flex_module, "create_block_mask", counting)
    generator = torch.Generator().manual_seed(1)
    noisy, clean = (torch.randint(0, 50, (3, LENGTH), generator=generator) for _ in range(2))
    block_sizes = torch.tensor(sizes)
    cached, plain = DiffusionForward(flex_micro), DiffusionForward(flex_micro, cache_masks=False)
    with torch.no_grad():  # flex has no CPU backward (torch 2.13)
        first = cached(noisy, clean, block_sizes)
        built = len(calls)
        second = cached(noisy, clean, block_sizes)
        assert len(calls) == built == len(set(sizes) - {LENGTH})  # one per one-size mask, none again
        reference = plain(noisy, clean, block_sizes)
    assert len(calls) == built + 1  # the uncached path builds its mask every call
    assert torch.equal(first, second)
    assert torch.allclose(first, reference, atol=1e-5)


def test_cached_training_logits_match_uncached_with_gradients(micro_eager):
    generator = torch.Generator().manual_seed(2)
    noisy, clean = (torch.randint(0, 50, (4, LENGTH), generator=generator) for _ in range(2))
    block_sizes = torch.tensor([4, 16, 2, 4])
    outputs = []
    for forward in (DiffusionForward(micro_eager), DiffusionForward(micro_eager, cache_masks=False)):
        micro_eager.zero_grad()
        logits = forward(noisy, clean, block_sizes)
        logits.logsumexp(-1).mean().backward()
        outputs.append((logits.detach(), [p.grad.clone() for p in micro_eager.parameters()]))
    assert torch.equal(outputs[0][0], outputs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(outputs[0][1], outputs[1][1], strict=True))


@pytest.fixture(scope="module")
def micro_eager():
    torch.manual_seed(0)
    return models.build("micro", init="random", attn_backend="sdpa", dropout=0.0).eval()


def test_masks_are_built_for_the_inputs_device():
    """The mask function's lookup table lives on the device of the index grids (a CPU table indexed
    by CUDA indices would fail on a GPU); the meta device stands in for one here."""
    cache = TrainingMaskCache()
    one = cache.get(LENGTH, torch.tensor([4, 4]), "meta")
    mixed = cache.get(LENGTH, torch.tensor([4, 8]), "meta")
    assert one.dense("meta").device.type == "meta" and mixed.dense("meta").shape == (2, 1, 32, 32)
    assert cache.one_size(LENGTH, 4, "meta") is one and cache.one_size(LENGTH, 4) is not one
