"""dind.models.folded: the folded sampling-step weights and the weight fingerprint."""

import pytest
import torch

from dind import models
from dind.models.folded import FoldedDiT, WeightSnapshot
from dind.sampling.oracles import MarkovOracle


@pytest.fixture()
def micro():
    return models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(5)
    ).eval()


def test_folded_step_equals_the_cached_reference_step(micro):
    folded = FoldedDiT(micro)
    # not vacuous: the random model's modulation is far from identity
    assert not torch.allclose(folded.layers[0].norm1.weight, micro.backbone.blocks[0].norm1.weight, atol=0.1)
    tokens = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(2))
    cache = micro.new_cache(3, 16)
    for start in range(0, 16, 4):
        block = tokens[:, start : start + 4].masked_fill(torch.arange(4) % 2 == 1, micro.mask_id)
        expected = micro.cached_logits(block, cache=cache, start=start)
        keys, values = [k.clone() for k in cache.keys], [v.clone() for v in cache.values]

        def attend(index, query, key, value, start=start, keys=keys, values=values):
            keys[index][:, :, start : start + 4], values[index][:, :, start : start + 4] = key, value
            end = start + 4
            return torch.nn.functional.scaled_dot_product_attention(
                query, keys[index][:, :, :end], values[index][:, :, :end]
            )

        with torch.no_grad():
            got = folded.project(folded.step(block, torch.arange(start, start + 4), attend))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        micro.append_to_cache(tokens[:, start : start + 4], cache=cache, start=start)


def test_snapshot_sees_updates_not_forward_passes(micro):
    before = WeightSnapshot(micro)
    micro.logits(torch.zeros(1, 8, dtype=torch.long))
    assert before.matches(micro)
    with torch.no_grad():
        micro.backbone.blocks[0].attn_qkv.weight.add_(1e-3)  # an optimizer step is in place
    assert not before.matches(micro)
    updated = WeightSnapshot(micro)
    micro.double()
    assert not updated.matches(micro)


def test_folded_needs_a_dit():
    oracle = MarkovOracle(torch.tensor([0.5, 0.5]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"FoldedDiT needs a dind DiT \(got MarkovOracle\)"):
        FoldedDiT(oracle)


def test_snapshot_sees_writes_through_data_and_norm_preserving_ones(micro):
    # .data writes do not bump version counters; BD3-LM's EMA helper swaps weights this way
    before = WeightSnapshot(micro)
    weight = micro.backbone.blocks[1].mlp[0].weight
    weight.data.copy_(weight.data * 0.999)
    assert not before.matches(micro)
    assert WeightSnapshot(micro).matches(micro)
    permuted = WeightSnapshot(micro)  # same L1/L2 norms, other bytes: a checksum would miss it
    weight.data.copy_(weight.data.flip(0))
    assert not permuted.matches(micro)
