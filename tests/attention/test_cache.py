"""KVCache bookkeeping: allocation once, scratch writes, strict left-to-right appends, reset."""

import pytest
import torch

from dind.attention import KVCache


def make(length=8, batch=2):
    return KVCache(layers=2, batch_size=batch, heads=1, length=length, head_dim=4, dtype=torch.float32)


def test_write_returns_prefix_and_does_not_advance():
    cache = make()
    key, value = torch.ones(2, 1, 4, 4), torch.full((2, 1, 4, 4), 2.0)
    keys, values = cache.write(0, 0, key, value)
    assert keys.shape == (2, 1, 4, 4) and torch.equal(values, value)
    assert cache.filled == 0
    cache.advance(4)
    keys, _ = cache.write(0, 4, 3 * key, value)
    assert keys.shape == (2, 1, 8, 4) and torch.equal(keys[:, :, :4], key)


def test_buffers_are_allocated_once():
    cache = make()
    pointers = [tensor.data_ptr() for tensor in cache.keys + cache.values]
    cache.write(1, 0, torch.ones(2, 1, 4, 4), torch.ones(2, 1, 4, 4))
    cache.advance(4)
    cache.reset()
    assert cache.filled == 0 and [t.data_ptr() for t in cache.keys + cache.values] == pointers


def test_check_block_errors():
    cache = make()
    with pytest.raises(ValueError, match=r"start must equal the cached length.*\(got start 4, cached 0\)"):
        cache.check_block(4, 4, 2)
    with pytest.raises(ValueError, match=r"fit the cache length \(got \[0, 9\), cache length 8\)"):
        cache.check_block(0, 9, 2)
    with pytest.raises(ValueError, match=r"block batch must equal the cache batch_size \(got 3, 2\)"):
        cache.check_block(0, 4, 3)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        make(length=0)
