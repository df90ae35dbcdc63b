"""Post-hoc remasking re-scores the draft with the context's model (or an injected scorer) and
ignores the tracked scores."""

import torch

from dind.remaskers import REMASKERS, PostHocRemasker, RemaskContext, remask
from dind.sampling import MarkovOracle, model_scorer


def _context(tokens, model=None):
    frozen = torch.zeros(tokens.shape, dtype=torch.bool)
    return RemaskContext(model, frozen, [torch.Generator().manual_seed(r) for r in range(tokens.shape[0])])


def test_uses_the_injected_scorer_not_the_tracked_scores():
    calls = []

    def scorer(tokens):
        calls.append(tokens.clone())
        return tokens.double()  # low token id = low confidence

    tokens = torch.tensor([[5, 1, 9, 3, 7, 0], [2, 8, 4, 6, 0, 1]])
    tracked = -tokens.float()  # the opposite order: snapshot would pick the high ids
    eligible = torch.tensor([[False, True, True, True, True, True], [True] * 6])
    chosen = remask(PostHocRemasker(scorer), tokens, tracked, eligible, 0.5, _context(tokens))
    assert len(calls) == 1 and torch.equal(calls[0], tokens)  # one call for the whole batch
    # row 0: eligible ids {1, 9, 3, 7, 0}, floor(2.5) = 2 lowest -> 0 and 1; row 1: 3 lowest -> 0, 1, 2
    assert chosen.tolist() == [
        [False, True, False, False, False, True],
        [True, False, False, False, True, True],
    ]


def test_by_name_it_scores_with_the_context_model_like_model_scorer():
    # built from the registry with no arguments (as from plan text), it takes the model from the
    # context: its keys are model_scorer's bidirectional re-score
    model = MarkovOracle([0.5, 0.3, 0.2], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    tokens = torch.tensor([[0, 0, 1, 2, 2, 0, 1, 1], [2, 1, 0, 0, 0, 1, 2, 2]])
    keys = REMASKERS.build("posthoc").keys(
        tokens, torch.zeros(2, 8), tokens >= 0, context=_context(tokens, model)
    )
    torch.testing.assert_close(keys, model_scorer(model)(tokens))


def test_block_size_is_the_scoring_forwards():
    model = MarkovOracle([0.5, 0.3, 0.2], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    tokens = torch.tensor([[0, 0, 1, 2, 2, 0, 1, 1]])
    keys = PostHocRemasker(block_size=4).keys(
        tokens, torch.zeros(1, 8), tokens >= 0, context=_context(tokens, model)
    )
    torch.testing.assert_close(keys, model_scorer(model, block_size=4)(tokens))
    assert not torch.allclose(keys, model_scorer(model)(tokens))
