"""Refine caches (dind.sampling.refine_cache): the exact setting of the skeleton cache equals the
exact path sample for sample; plan text; what is refused."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dind import models
from dind.sampling import (
    REFINE_CACHES,
    UNMASKING_RULES,
    GenerateOptions,
    SkeletonRefine,
    Stage,
    StagePlan,
    generate,
)
from dind.sampling.oracles import MarkovOracle

MICRO = models.build("micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)).eval()


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    ratio=st.sampled_from([0.25, 0.5, 1.0]),
    rule=st.sampled_from(UNMASKING_RULES.names()),
    batch=st.integers(1, 3),
)
# a row finishes while another waits on a step that revealed nothing: no new forward, and the
# finished row's changed tokens must not push the waiting row onto the partial path
@example(seed=0, ratio=0.25, rule="ancestral", batch=3)
def test_skeleton_refreshed_every_step_equals_the_exact_refinement(seed, ratio, rule, batch):
    unmasking = UNMASKING_RULES.build(rule)
    options = GenerateOptions(bos_id=256, unmasking=unmasking)
    exact = StagePlan([Stage(4), Stage(None, ratio)])
    skeleton = StagePlan([Stage(4), Stage(None, ratio, cache=SkeletonRefine(every=1))])
    kwargs = dict(length=32, batch_size=batch, seed=seed, options=options)
    a, b = generate(MICRO, exact, **kwargs), generate(MICRO, skeleton, **kwargs)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.nfe, b.nfe)


def test_a_sparser_refresh_recomputes_fewer_positions_and_stays_a_valid_sample():
    options = GenerateOptions(bos_id=256)
    plan = StagePlan.parse("4 -> L@0.5{cache=skeleton(every=8)}")
    result = generate(MICRO, plan, length=64, batch_size=2, seed=3, options=options)
    assert not (result.tokens == MICRO.mask_id).any()
    draft = result.trace[0].tokens
    kept = ~result.trace[1].remasked
    assert torch.equal(result.tokens[kept], draft[kept])  # only remasked positions were refilled
    batch = generate(MICRO, plan, length=64, batch_size=3, seed=[7, 8, 9], options=options)
    alone = generate(MICRO, plan, length=64, batch_size=1, seed=[8], options=options)
    assert torch.equal(batch.tokens[1], alone.tokens[0])  # recomputed sets are per row


def test_plan_text_round_trips_and_refusals_name_the_rule():
    plan = StagePlan.parse("4 -> L@0.5{cache=skeleton(every=8)}")
    assert plan.stages[1].cache == SkeletonRefine(every=8)
    assert StagePlan.parse(str(plan)) == plan and str(plan) == "4 -> L@0.5{cache=skeleton(every=8)}"
    assert str(StagePlan.parse("4 -> L@0.5{cache=skeleton}")) == "4 -> L@0.5{cache=skeleton}"
    assert set(REFINE_CACHES.names()) >= {"exact", "skeleton"}
    with pytest.raises(
        ValueError, match=r"stage 2: a refine cache \(cache=...\) applies to a global stage only"
    ):
        StagePlan.parse("4 -> 16@0.5{cache=skeleton}").validate(32)
    StagePlan.parse("4 -> 32@0.5{cache=skeleton}").validate(32)  # one block as long as the sequence
    with pytest.raises(ValueError, match=r"stage 2 .*every must be a positive integer \(got 0\)"):
        StagePlan.parse("4 -> L@0.5{cache=skeleton(every=0)}")
    oracle = MarkovOracle(torch.tensor([0.5, 0.5]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(
        ValueError, match=r"cache=skeleton needs a denoiser with features .* \(got MarkovOracle\)"
    ):
        generate(oracle, StagePlan.parse("4 -> L@0.5{cache=skeleton}"), length=8, seed=0)


def test_a_vicinity_wide_enough_to_cover_the_sequence_is_exact_and_radius_round_trips():
    """radius >= length recomputes every position at every partial step: the exact samples."""
    options = GenerateOptions(bos_id=256)
    exact = StagePlan.parse("4 -> L@0.5")
    wide = StagePlan.parse("4 -> L@0.5{cache=skeleton(every=8,radius=32)}")
    assert wide.stages[1].cache == SkeletonRefine(every=8, radius=32)
    assert StagePlan.parse(str(wide)) == wide
    kwargs = dict(length=32, batch_size=2, seed=5, options=options)
    a, b = generate(MICRO, exact, **kwargs), generate(MICRO, wide, **kwargs)
    assert torch.equal(a.tokens, b.tokens)
    with pytest.raises(ValueError, match="radius must be an integer >= 0 .got -1"):
        SkeletonRefine(radius=-1)
