"""CountingDenoiser: raw passes and model time, transparent to the wrapped model."""

import torch

from dind.models.protocol import Denoiser
from dind.sampling.nfe import CountingDenoiser
from dind.sampling.oracles import MarkovOracle

ORACLE = MarkovOracle.unigram(torch.tensor([0.5, 0.5]))


def test_counts_every_call_and_is_a_denoiser():
    counting = CountingDenoiser(ORACLE)
    assert isinstance(counting, Denoiser)
    assert (counting.vocab_size, counting.mask_id) == (3, 2)
    tokens = torch.zeros(1, 4, dtype=torch.long)
    cache = counting.new_cache(1, 4)
    torch.testing.assert_close(counting.logits(tokens), ORACLE.logits(tokens))
    counting.append_to_cache(tokens[:, :2], cache=cache, start=0)
    counting.cached_logits(tokens[:, 2:], cache=cache, start=2)
    assert counting.forward_passes == 3 and counting.model_time_s > 0


def test_scorer_nfe_counts_every_post_hoc_scoring_forward_and_nothing_else():
    """Model NFE and scorer NFE are separate counts: a post-hoc remasker's forwards (1, or one per
    chunk) are its stage's scorer NFE, the same for every row; snapshot remasking costs none."""
    from dind.sampling import GenerateOptions, StagePlan, generate

    oracle = MarkovOracle.unigram(torch.tensor([0.3, 0.7]))
    options = GenerateOptions(bos_id=0)
    plans = {"4 -> 16@0.5": 0, "4 -> 16@0.5:posthoc": 1, "4 -> 16@0.5:posthoc_masked(chunks=3) -> 16@0.25": 3}
    for text, expected in plans.items():
        result = generate(oracle, StagePlan.parse(text), length=16, batch_size=2, seed=0, options=options)
        assert result.scorer_nfe.tolist() == [expected, expected], text
        assert [s.scorer_nfe.tolist() for s in result.trace][1] == [expected, expected]
        assert result.to_dict()["scorer_nfe"] == [expected, expected]
        baseline = generate(
            oracle, StagePlan.parse("4 -> 16@0.5"), length=16, batch_size=2, seed=0, options=options
        )
        assert result.trace[1].nfe.shape == baseline.trace[1].nfe.shape
