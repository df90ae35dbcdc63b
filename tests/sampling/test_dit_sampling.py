"""The samplers on the real backbone (the `micro` DiT, random weights): cache parity and invariance."""

import pytest
import torch

from dind import models
from dind.models import UncachedStep
from dind.sampling import UNMASKING_RULES, GenerateOptions, StagePlan, generate, model_scorer


@pytest.fixture(scope="module")
def micro():
    return models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()


PLAN = StagePlan.parse("4 -> 8@0.5 -> 32@0.25")


@pytest.mark.parametrize("rule", UNMASKING_RULES.names())
def test_cache_and_no_cache_give_identical_samples(micro, rule):
    kwargs = dict(length=32, batch_size=2, seed=0, prompt=[72, 105])
    options = GenerateOptions(bos_id=256, unmasking=UNMASKING_RULES.build(rule))
    cached, uncached = (
        generate(micro, PLAN, **kwargs, options=options),
        generate(micro, PLAN, **kwargs, options=options.evolve(step=UncachedStep())),
    )
    assert torch.equal(cached.tokens, uncached.tokens)
    assert torch.equal(cached.nfe, uncached.nfe)
    assert not (cached.tokens == micro.mask_id).any()


def test_batch_row_equals_the_row_alone_and_first_hitting_nfe(micro):
    batch = generate(micro, PLAN, length=32, batch_size=3, seed=5, options=GenerateOptions(bos_id=256))
    alone = generate(
        micro, PLAN, length=32, batch_size=1, seed=[batch.seeds[2]], options=GenerateOptions(bos_id=256)
    )
    assert torch.equal(batch.tokens[2], alone.tokens[0])
    assert batch.trace[0].nfe.tolist() == [31, 31, 31]
    assert batch.trace[1].nfe.tolist() == [15, 15, 15] and batch.trace[2].nfe.tolist() == [7, 7, 7]


def test_model_scorer_runs_on_the_dit(micro):
    tokens = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    scores = model_scorer(micro)(tokens)
    assert scores.shape == (2, 32) and ((scores > 0) & (scores < 1)).all()


def test_the_cache_append_rides_on_the_next_blocks_first_forward(micro):
    # append_and_features (DiT, static step): one pass instead of an append plus the block's first
    from dind.models import StaticStep

    plan = StagePlan.parse("4")
    options = GenerateOptions(bos_id=256)
    fused = generate(micro, plan, length=32, batch_size=2, seed=1, options=options)
    static = generate(micro, plan, length=32, batch_size=2, seed=1, options=options.evolve(step=StaticStep()))
    assert torch.equal(fused.tokens, static.tokens)
    # first-hitting: one forward per generated token (31 after BOS), no separate append passes
    assert fused.trace[0].forward_passes == static.trace[0].forward_passes == 31
    assert fused.nfe.tolist() == [31, 31]
    # a block with nothing masked makes no forward: its positions are appended with the next one
    cache, reference = micro.new_cache(2, 16), micro.new_cache(2, 16)
    tokens = fused.tokens[:, :16]
    for start in (0, 4):
        micro.append_to_cache(tokens[:, start : start + 4], cache=reference, start=start)
    expected = micro.cached_features(tokens[:, 8:12], cache=reference, start=8)
    got = micro.append_and_features(tokens[:, 0:8], tokens[:, 8:12], cache=cache, start=0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert cache.filled == 8


def test_a_wrapper_that_changes_the_logits_is_sampled_through_them(micro):
    # features + project stand in for logits only where they are the same function: an instance
    # or subclass that replaces logits (a bias, guidance) must not be bypassed
    import copy

    from dind.models import DiT
    from dind.models.protocol import projects_consistently

    assert projects_consistently(micro)
    patched = copy.deepcopy(micro)
    original = patched.logits
    patched.logits = lambda tokens, block_size=None: original(tokens, block_size=block_size).fill_(
        float("nan")
    )
    assert not projects_consistently(patched)

    class Biased(DiT):
        def logits(self, tokens, *, block_size=None, sigma=None, where=None):
            return super().logits(tokens, block_size=block_size, sigma=sigma, where=where) + 1.0

    assert not projects_consistently(Biased(micro.config))
    from dind.errors import NonFiniteError

    with pytest.raises(NonFiniteError, match="non-finite logits"):
        generate(patched, StagePlan.parse("L"), length=16, seed=0, options=GenerateOptions(bos_id=256))
