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
