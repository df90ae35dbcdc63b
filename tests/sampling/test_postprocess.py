"""EOS truncation, of tokens and of a generation result (the rejection test: tests/eval/test_rejection.py)."""

import torch

from dind.sampling import GenerateOptions, StagePlan, generate
from dind.sampling.oracles import MarkovOracle
from dind.sampling.postprocess import truncate_after_eos, truncate_at_eos


def test_truncate_after_eos_pads_with_eos_and_reports_lengths():
    tokens = torch.tensor([[9, 1, 9, 2, 3], [9, 1, 2, 3, 4], [9, 9, 5, 9, 6]])
    padded, lengths = truncate_after_eos(tokens, eos_id=9, prompt_length=1)
    assert lengths.tolist() == [3, 5, 2]
    assert padded.tolist() == [[9, 1, 9, 9, 9], [9, 1, 2, 3, 4], [9, 9, 9, 9, 9]]


def test_truncate_at_eos_never_ends_a_sample_on_its_frozen_bos():
    oracle = MarkovOracle.unigram(torch.tensor([0.3, 0.3, 0.4]))
    options = GenerateOptions(bos_id=0)
    result = generate(oracle, StagePlan.parse("4"), length=12, batch_size=4, seed=1, options=options)
    truncated = truncate_at_eos(result, 0)
    expected_tokens, expected_lengths = truncate_after_eos(result.tokens, 0, prompt_length=1)
    assert torch.equal(truncated.tokens, expected_tokens) and torch.equal(truncated.lengths, expected_lengths)
    assert bool((truncated.lengths > 1).all()) and truncated.seeds == result.seeds
