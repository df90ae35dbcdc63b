"""posthoc_masked: p(drafted token) read with the position masked, in interleaved chunks."""

import pytest
import torch

from dind.models import build
from dind.remaskers import REMASKERS, MaskedPostHocRemasker, RemaskContext


@pytest.fixture(scope="module")
def model():
    return build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0).eval()


def _context(model, batch, length):
    frozen = torch.zeros(batch, length, dtype=torch.bool)
    frozen[:, 0] = True
    return RemaskContext(model, frozen, [torch.Generator().manual_seed(i) for i in range(batch)])


@pytest.mark.parametrize("chunks", [1, 3, 16])
def test_each_key_is_the_probability_with_its_group_masked(model, chunks):
    length = 16
    tokens = torch.randint(0, 256, (2, length), generator=torch.Generator().manual_seed(1))
    context = _context(model, 2, length)
    eligible = ~context.frozen
    keys = MaskedPostHocRemasker(chunks=chunks).keys(
        tokens, torch.zeros(2, length), eligible, context=context
    )
    for position in range(1, length):  # independent path: mask exactly this position's group
        group = eligible & (torch.arange(length) % chunks == position % chunks)[None, :]
        probs = context.draft_probs(tokens.masked_fill(group, model.mask_id))
        expected = probs[torch.arange(2), position, tokens[:, position]]
        torch.testing.assert_close(keys[:, position], expected)


def test_it_differs_from_posthoc_and_is_registered(model):
    tokens = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(2))
    context = _context(model, 1, 16)
    eligible = ~context.frozen
    masked = REMASKERS.build("posthoc_masked").keys(tokens, tokens.float(), eligible, context=context)
    visible = REMASKERS.build("posthoc").keys(tokens, tokens.float(), eligible, context=context)
    assert not torch.allclose(masked[eligible], visible[eligible])
