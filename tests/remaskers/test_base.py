"""The batched exact-count selection (choose_remasked, lowest_k, remask) and RemaskContext."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.counter_rng import REMASK_TIES, RowStreams
from dind.errors import NonFiniteError
from dind.remaskers import RemaskContext, choose_remasked, lowest_k, remask, remask_counts


def _case(seed, batch, length):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (batch, length), generator=generator).float()  # many ties
    eligible = torch.rand(batch, length, generator=generator) < 0.7
    counts = (
        (torch.rand(batch, generator=generator) * (eligible.sum(1) + 1)).long().clamp(max=eligible.sum(1))
    )
    return scores, eligible, counts


@given(seed=st.integers(0, 2**31), batch=st.integers(1, 4), length=st.integers(1, 32))
def test_chosen_keys_never_exceed_unchosen_eligible_keys(seed, batch, length):
    scores, eligible, counts = _case(seed, batch, length)
    generators = [torch.Generator().manual_seed(seed + row) for row in range(batch)]
    for chosen in (
        choose_remasked(scores, eligible, counts, generators),
        lowest_k(scores, eligible, counts, torch.Generator().manual_seed(seed)),
    ):
        assert chosen.sum(1).tolist() == counts.tolist()
        assert not (chosen & ~eligible).any()
        for row in range(batch):
            picked, rest = scores[row][chosen[row]], scores[row][eligible[row] & ~chosen[row]]
            if len(picked) and len(rest):
                assert picked.max() <= rest.min()


@given(seed=st.integers(0, 2**31), batch=st.integers(2, 4), length=st.integers(1, 32))
def test_a_row_equals_itself_chosen_alone(seed, batch, length):
    scores, eligible, counts = _case(seed, batch, length)
    together = choose_remasked(
        scores, eligible, counts, [torch.Generator().manual_seed(seed + r) for r in range(batch)]
    )
    for row in range(batch):
        alone = choose_remasked(
            scores[row : row + 1], eligible[row : row + 1], counts[row : row + 1],
            [torch.Generator().manual_seed(seed + row)],
        )  # fmt: skip
        assert torch.equal(alone[0], together[row])


def test_generators_are_one_seed_each_and_ties_follow_the_row_stream():
    # generators are turned into counter streams (one seed drawn from each); with all keys tied the
    # chosen set is the positions of the lowest REMASK_TIES uniforms of the row's stream
    scores, eligible = torch.zeros(3, 20), torch.ones(3, 20, dtype=torch.bool)
    counts = torch.tensor([4, 7, 0])
    from_generators = choose_remasked(
        scores, eligible, counts, [torch.Generator().manual_seed(r) for r in range(3)]
    )
    streams = RowStreams.from_generators([torch.Generator().manual_seed(r) for r in range(3)])
    assert torch.equal(from_generators, choose_remasked(scores, eligible, counts, streams))
    ties = streams.child(REMASK_TIES).uniform(20)
    for row, count in enumerate(counts.tolist()):
        lowest = set(ties[row].argsort()[:count].tolist())
        assert set(from_generators[row].nonzero().flatten().tolist()) == lowest


def test_ties_are_broken_at_random():
    # four equal keys, two chosen: different seeds must give different pairs
    scores, eligible = torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool)
    pairs = {
        tuple(
            choose_remasked(scores, eligible, torch.tensor([2]), [torch.Generator().manual_seed(s)])[
                0
            ].tolist()
        )
        for s in range(40)
    }
    assert len(pairs) == 6  # every one of the C(4, 2) pairs occurs


def test_infinite_eligible_keys_still_give_the_exact_count():
    # eligible +inf keys tie with ineligible positions; the count must still be met from eligible ones
    keys = torch.full((1, 6), float("inf"))
    eligible = torch.tensor([[False, True, False, True, False, True]])
    for seed in range(20):
        chosen = choose_remasked(keys, eligible, torch.tensor([3]), [torch.Generator().manual_seed(seed)])
        assert chosen.tolist() == eligible.tolist()


def test_shape_mismatches_are_errors():
    with pytest.raises(ValueError, match=r"keys and eligible must have one shape \(got \(2, 4\), \(2, 5\)\)"):
        choose_remasked(
            torch.zeros(2, 4), torch.ones(2, 5, dtype=torch.bool), torch.tensor([1, 1]), [None, None]
        )
    with pytest.raises(
        ValueError, match=r"scores and eligible must have one shape \(got \(2, 4\), \(2, 5\)\)"
    ):
        lowest_k(torch.zeros(2, 4), torch.ones(2, 5, dtype=torch.bool), torch.tensor([1, 1]))
    with pytest.raises(
        ValueError, match=r"need one random stream \(or generator\) per row \(got 1, batch 2\)"
    ):
        choose_remasked(torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool), torch.tensor([1, 1]), [None])


class _Keys:
    def __init__(self, keys):
        self.value = keys

    def keys(self, tokens, scores, eligible, *, context):
        return self.value


def _context(batch=1, length=4, model=None):
    return RemaskContext(model, torch.zeros(batch, length, dtype=torch.bool), [torch.Generator()] * batch)


def test_remask_checks_the_keys():
    tokens, eligible = torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(
        ValueError, match=r"_Keys.keys must return \(batch, length\) = \(1, 4\) keys \(got \(1, 3\)\)"
    ):
        remask(_Keys(torch.zeros(1, 3)), tokens, torch.zeros(1, 4), eligible, 0.5, _context())
    with pytest.raises(NonFiniteError, match="_Keys.keys returned NaN keys"):
        remask(
            _Keys(torch.tensor([[0.0, float("nan"), 1.0, 2.0]])),
            tokens,
            torch.zeros(1, 4),
            eligible,
            0.5,
            _context(),
        )


def test_context_without_a_model_says_so():
    with pytest.raises(
        ValueError, match=r"this remasker needs the model: build RemaskContext\(model=...\) \(got None\)"
    ):
        _context().draft_probs(torch.zeros(1, 4, dtype=torch.long))


def test_context_uniforms_come_from_each_rows_stream():
    frozen = torch.zeros(2, 5, dtype=torch.bool)
    streams = RowStreams.from_seeds([3, 4])
    context = RemaskContext(None, frozen, streams)
    u = context.uniform()
    assert u.shape == (2, 5) and u.dtype == torch.float64 and ((u > 0) & (u < 1)).all()
    alone = RemaskContext(None, frozen[1:], streams.rows([1])).uniform()
    assert torch.equal(u[1], alone[0])  # a row draws what it draws alone
    assert torch.equal(u, context.uniform())  # a pure function of the context
    assert not torch.equal(u, context.uniform(stream=1))  # another stream, other draws


def test_remask_counts_is_floor_of_ratio_times_eligible():
    eligible = torch.tensor([[True] * 7 + [False], [True] * 8, [False] * 8])
    assert remask_counts(eligible, 0.5).tolist() == [3, 4, 0]
    assert remask_counts(eligible, 1.0).tolist() == [7, 8, 0]
    assert remask_counts(eligible, 0.0).tolist() == [0, 0, 0]
    assert remask_counts(torch.ones(1, 100, dtype=torch.bool), 0.29).tolist() == [28]
