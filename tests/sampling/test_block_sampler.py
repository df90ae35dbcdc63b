"""The per-stage block sampler on exact toy oracles: invariants, NFE accounting, cache parity."""

import pytest
import torch

from dind.counter_rng import RowStreams
from dind.sampling.block_sampler import sample_stage, stage_spans
from dind.sampling.confidence import CONFIDENCE_TRACKERS, initial_scores
from dind.sampling.oracles import MarkovOracle
from dind.sampling.unmasking import UNMASKING_RULES, Ancestral, FirstHitting

TRANSITION = torch.tensor(
    [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]
)
ORACLE = MarkovOracle(torch.tensor([0.4, 0.3, 0.2, 0.1]), TRANSITION)
MASK = ORACLE.mask_id


def _run(tokens, *, block_size=4, rule=None, seeds=None, use_cache=True, steps=None, model=ORACLE):
    batch, length = tokens.shape
    seeds = seeds if seeds is not None else range(batch)
    return sample_stage(
        model, tokens, initial_scores(batch, length), block_size=block_size, rule=rule or FirstHitting(),
        tracker=CONFIDENCE_TRACKERS.build("snapshot"), steps=steps,
        generators=[torch.Generator().manual_seed(s) for s in seeds], use_cache=use_cache,
    )  # fmt: skip


def _partial(batch=3, length=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, MASK, (batch, length), generator=g)
    return tokens.masked_fill(torch.rand(batch, length, generator=g) < 0.5, MASK)


def test_spans_are_aligned_at_multiples_of_the_block_size():
    assert stage_spans(4, 12) == ((0, 4), (4, 8), (8, 12))
    assert stage_spans(None, 12) == ((0, 12),)


@pytest.mark.parametrize("name", UNMASKING_RULES.names())
@pytest.mark.parametrize("block_size", [4, None])
def test_fills_every_mask_and_never_changes_a_kept_token(name, block_size):
    tokens = _partial()
    out = _run(tokens, block_size=block_size, rule=UNMASKING_RULES.build(name))
    assert not (out.tokens == MASK).any()
    kept = tokens != MASK
    assert torch.equal(out.tokens[kept], tokens[kept])
    # every filled position got a score; kept positions keep theirs (0 here)
    assert (out.scores[~kept] > 0).all() and (out.scores[kept] == 0).all()


def test_first_hitting_nfe_equals_generated_tokens():
    tokens = _partial(batch=4, length=16)
    out = _run(tokens)
    assert torch.equal(out.nfe, (tokens == MASK).sum(dim=1))


def test_raw_forward_passes_count_denoising_forwards_and_cache_appends():
    tokens = torch.full((1, 16), MASK)
    tokens[0, 4:8] = 1  # a block with nothing masked: no NFE, still appended
    out = _run(tokens)
    assert out.nfe.tolist() == [12]
    assert out.forward_passes == 12 + 3  # appends after blocks 1-3, not after the last
    assert 0 < out.model_time_s


def test_uncached_path_makes_no_appends():
    out = _run(torch.full((1, 16), MASK), use_cache=False)
    assert out.forward_passes == 16


@pytest.mark.parametrize("name", UNMASKING_RULES.names())
def test_cache_and_no_cache_give_identical_samples(name):
    tokens = _partial(batch=3, length=16, seed=4)
    rule = UNMASKING_RULES.build(name)
    cached, uncached = _run(tokens, rule=rule), _run(tokens, rule=rule, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
    assert torch.equal(cached.scores, uncached.scores)
    assert torch.equal(cached.nfe, uncached.nfe)


def test_ancestral_reuses_p_x0_so_nfe_is_below_steps():
    tokens = torch.full((64, 8), MASK)
    out = _run(tokens, block_size=8, rule=Ancestral(), steps=32)
    assert (out.nfe <= 8).all() and (out.nfe >= 1).all()
    single = _run(tokens[:1], block_size=8, rule=Ancestral(), steps=32)
    assert single.forward_passes == single.nfe.item() <= 8  # a forward only after a step revealed something


def test_same_seeds_same_output_and_rows_follow_their_own_seed():
    tokens = _partial(batch=3, length=16)
    first, again = _run(tokens, seeds=[5, 6, 7]), _run(tokens, seeds=[5, 6, 7])
    assert torch.equal(first.tokens, again.tokens)
    alone = _run(tokens[1:2], seeds=[6])
    assert torch.equal(alone.tokens[0], first.tokens[1])
    assert torch.equal(alone.scores[0], first.scores[1])
    assert alone.nfe.tolist() == first.nfe[1:2].tolist()


class _Cheater:
    uses_confidence = False
    may_skip_steps = False

    def default_steps(self, width):
        return width

    def select(self, masked, noise, confidence, *, step, steps):
        return torch.ones_like(masked)


def test_a_rule_revealing_an_unmasked_position_raises():
    tokens = _partial()
    with pytest.raises(ValueError, match="revealed a position that is not masked"):
        _run(tokens, rule=_Cheater())


def test_rejects_mismatched_generators():
    with pytest.raises(ValueError, match=r"generators must have one per row \(got 1, batch 3\)"):
        sample_stage(
            ORACLE,
            _partial(),
            initial_scores(3, 16),
            block_size=4,
            rule=FirstHitting(),
            tracker=CONFIDENCE_TRACKERS.build("snapshot"),
            generators=[torch.Generator()],
        )


def _stage(tokens, **randomness):
    batch, length = tokens.shape
    return sample_stage(
        ORACLE, tokens, initial_scores(batch, length), block_size=4,
        rule=UNMASKING_RULES.build("confidence_topk"), tracker=CONFIDENCE_TRACKERS.build("snapshot"),
        steps=2, stage_index=2, **randomness,
    )  # fmt: skip


def test_streams_and_generators_are_one_randomness_and_exactly_one_is_required():
    tokens = _partial(batch=3, length=16)
    by_generators = _stage(tokens, generators=[torch.Generator().manual_seed(s) for s in range(3)])
    streams = RowStreams.from_generators([torch.Generator().manual_seed(s) for s in range(3)])
    assert torch.equal(by_generators.tokens, _stage(tokens, streams=streams).tokens)
    # a row of a batch equals the row alone with its own stream (every rule, no generator loop)
    alone = _stage(tokens[2:], streams=streams.rows([2]))
    assert torch.equal(alone.tokens[0], by_generators.tokens[2])
    with pytest.raises(ValueError, match=r"pass exactly one of generators= and streams= \(got neither\)"):
        _stage(tokens)
    with pytest.raises(ValueError, match=r"streams must have one key per row \(got 1, batch 3\)"):
        _stage(tokens, streams=streams.rows([0]))


def test_the_step_draws_nothing_from_torch_generators(monkeypatch):
    # every draw is a counter hash: the sampler's step never calls torch.rand / rand_like / randint
    tokens = _partial(batch=4, length=16)
    streams = RowStreams.from_seeds([1, 2, 3, 4])
    expected = _stage(tokens, streams=streams)

    def refuse(*args, **kwargs):
        raise AssertionError("the sampler drew from a torch generator")

    for name in ("rand", "rand_like", "randint", "randn", "multinomial"):
        monkeypatch.setattr(torch, name, refuse)
    assert torch.equal(_stage(tokens, streams=streams).tokens, expected.tokens)
