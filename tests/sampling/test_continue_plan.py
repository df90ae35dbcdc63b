"""continue_plan: running stages k+1.. from a cached k-stage result equals running the whole plan."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.models import DynamicStep, StaticStep, UncachedStep, build
from dind.sampling import GenerateOptions, StagePlan, generate
from dind.sampling.multistage import continue_plan
from dind.sampling.oracles import MarkovOracle
from dind.sampling.postprocess import truncate_at_eos

TRANSITION = torch.tensor(
    [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]
)
ORACLE = MarkovOracle(torch.tensor([0.4, 0.3, 0.2, 0.1]), TRANSITION)
MICRO = build("micro", generator=torch.Generator().manual_seed(0), init="random").eval()
LATER = st.sampled_from([
    "16@0.5", "L@0.25", "8@0.75:random", "L@0.5:posthoc", "L@0.5/4{unmasking=confidence_topk}",
    "8@0.5{tracker=margin}", "L@0.5:posthoc_masked", "16@0.5{temperature=0.8,top_p=0.9}",
])  # fmt: skip


def _same(a, b):
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.nfe, b.nfe) and a.seeds == b.seeds
    for x, y in zip(a.trace, b.trace, strict=True):
        assert torch.equal(x.remasked, y.remasked) and torch.equal(x.tokens, y.tokens)


@settings(max_examples=6, deadline=None)
@given(
    later=st.lists(LATER, min_size=1, max_size=2),
    done=st.integers(1, 2),
    seed=st.integers(0, 2**31),
    batch=st.integers(1, 3),
    prompt=st.sampled_from([None, [2, 1]]),
)
def test_continuing_from_the_first_stages_equals_the_whole_plan(later, done, seed, batch, prompt):
    text = " -> ".join(["4", *later])
    plan = StagePlan.parse(text)
    done = min(done, len(plan) - 1)
    head = StagePlan(plan.stages[:done])
    kw = dict(length=16, batch_size=batch, seed=seed, prompt=prompt)
    whole = generate(ORACLE, plan, **kw)
    draft = generate(ORACLE, head, **kw)
    resumed = continue_plan(ORACLE, plan, draft)
    _same(resumed, whole)
    assert resumed.trace[:done] == draft.trace  # the draft's NFEs and times are the plan's first stages'


def test_parity_on_a_real_denoiser_with_bos():
    plan = StagePlan.parse("4 -> L@0.5/4{unmasking=confidence_topk} -> 8@0.25:random")
    for step in (DynamicStep(), UncachedStep()):
        options = GenerateOptions(bos_id=MICRO.mask_id - 1, step=step)
        kw = dict(length=16, batch_size=2, seed=[5, 9], options=options)
        with torch.no_grad():
            whole = generate(MICRO, plan, **kw)
            draft = generate(MICRO, StagePlan(plan.stages[:1]), **kw)
            _same(continue_plan(MICRO, plan, draft, options=options), whole)
            # folded weights: rounding differs
            static = continue_plan(MICRO, plan, draft, options=options.evolve(step=StaticStep()))
            assert torch.equal(static.tokens, whole.tokens) and torch.equal(static.nfe, whole.nfe)
            torch.testing.assert_close(static.scores, whole.scores)


def test_refuses_a_draft_that_is_not_the_plan_prefix():
    draft = generate(ORACLE, StagePlan.parse("4"), length=16, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="plan must start with the draft's 1 stage"):
        continue_plan(ORACLE, StagePlan.parse("8 -> 16@0.5"), draft)
    with pytest.raises(ValueError, match="and have more"):
        continue_plan(ORACLE, StagePlan.parse("4"), draft)
    eos = truncate_at_eos(generate(ORACLE, StagePlan.parse("4"), length=16, batch_size=2, seed=0), 0)
    if bool((eos.lengths != 16).any()):
        with pytest.raises(ValueError, match="no EOS truncation"):
            continue_plan(ORACLE, StagePlan.parse("4 -> 16@0.5"), eos)
