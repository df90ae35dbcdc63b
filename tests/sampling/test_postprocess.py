"""EOS truncation and the low-entropy rejection test."""

import torch

from dind.sampling.postprocess import low_entropy_rows, truncate_after_eos


def test_truncate_after_eos_pads_with_eos_and_reports_lengths():
    tokens = torch.tensor([[9, 1, 9, 2, 3], [9, 1, 2, 3, 4], [9, 9, 5, 9, 6]])
    padded, lengths = truncate_after_eos(tokens, eos_id=9, prompt_length=1)
    assert lengths.tolist() == [3, 5, 2]
    assert padded.tolist() == [[9, 1, 9, 9, 9], [9, 1, 2, 3, 4], [9, 9, 9, 9, 9]]


def test_low_entropy_rows_uses_the_last_window_and_only_past_it():
    g = torch.Generator().manual_seed(0)
    varied = torch.randint(0, 1000, (1, 300), generator=g)
    stuck = varied.clone()
    stuck[0, -256:] = 7
    early_stuck = varied.clone()
    early_stuck[0, :40] = 7  # outside the last 256 positions
    rows = torch.cat([varied, stuck, early_stuck])
    assert low_entropy_rows(rows).tolist() == [False, True, False]
    assert low_entropy_rows(torch.full((2, 256), 7)).tolist() == [False, False]  # length <= 256
