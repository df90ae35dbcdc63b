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
