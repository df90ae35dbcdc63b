"""The multi-stage sampler (PAPER Algorithm 1) on an exact toy oracle."""

import json
import math

import pytest
import torch

from dind.models import UncachedStep
from dind.remaskers import PostHocRemasker, RandomRemasker, SnapshotRemasker
from dind.sampling import UNMASKING_RULES, GenerateOptions, StagePlan, generate, model_scorer
from dind.sampling.multistage import row_seed
from dind.sampling.oracles import MarkovOracle
from dind.sampling.plan import Stage
from dind.sampling.postprocess import truncate_at_eos

TRANSITION = torch.tensor(
    [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]
)
ORACLE = MarkovOracle(torch.tensor([0.4, 0.3, 0.2, 0.1]), TRANSITION)
MASK = ORACLE.mask_id
PLAN = StagePlan.parse("4 -> 16@0.5")


def test_no_mask_left_and_trace_shapes():
    result = generate(ORACLE, PLAN, length=16, batch_size=3, seed=0)
    assert result.tokens.shape == (3, 16) and not (result.tokens == MASK).any()
    assert len(result.trace) == 2
    assert [t.block_size for t in result.trace] == [4, 16]
    assert torch.equal(result.trace[-1].tokens, result.tokens)
    assert not result.trace[0].remasked.any()


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.8, 1.0])
def test_exactly_floor_gamma_eligible_remasked_per_row_and_kept_tokens_unchanged(gamma):
    plan = StagePlan([Stage(4), Stage(8, remask_ratio=gamma), Stage(None, remask_ratio=gamma)])
    result = generate(ORACLE, plan, length=16, batch_size=3, seed=1, prompt=[2, 2, 1])
    eligible = 16 - 3
    for before, stage in zip(result.trace, result.trace[1:], strict=False):
        assert (stage.remasked.sum(dim=1) == math.floor(gamma * eligible)).all()
        assert not stage.remasked[:, :3].any()  # never the prompt
        kept = ~stage.remasked
        assert torch.equal(stage.tokens[kept], before.tokens[kept])
        assert torch.equal(stage.scores[kept], before.scores[kept])  # scores carry over


def test_prompt_and_bos_are_frozen():
    result = generate(
        ORACLE, PLAN, length=16, batch_size=2, seed=0, prompt=[1, 0], options=GenerateOptions(bos_id=3)
    )
    assert (result.tokens[:, :3] == torch.tensor([3, 1, 0])).all()
    assert torch.isinf(result.scores[:, :3]).all()
    per_row = generate(ORACLE, PLAN, length=16, batch_size=2, seed=0, prompt=torch.tensor([[1, 0], [2, 2]]))
    assert per_row.tokens[:, :2].tolist() == [[1, 0], [2, 2]]


def test_first_hitting_nfe_equals_generated_tokens_per_stage():
    result = generate(ORACLE, PLAN, length=16, batch_size=2, seed=0, options=GenerateOptions(bos_id=0))
    assert result.trace[0].nfe.tolist() == [15, 15]
    assert result.trace[1].nfe.tolist() == [7, 7]  # floor(0.5 * 15)
    assert result.nfe.tolist() == [22, 22]


def test_same_seed_same_output():
    a = generate(ORACLE, PLAN, length=16, batch_size=2, seed=11)
    b = generate(ORACLE, PLAN, length=16, batch_size=2, seed=11)
    c = generate(ORACLE, PLAN, length=16, batch_size=1, seed=[a.seeds[1]])
    assert torch.equal(a.tokens, b.tokens) and a.seeds == (row_seed(11, 0), row_seed(11, 1))
    assert torch.equal(a.tokens[1], c.tokens[0])
    d = generate(ORACLE, PLAN, length=16, batch_size=1, seed=11)
    assert torch.equal(a.tokens[0], d.tokens[0])


def test_nearby_int_seeds_do_not_share_rows():
    a = generate(ORACLE, StagePlan.parse("16"), length=16, batch_size=4, seed=0)
    b = generate(ORACLE, StagePlan.parse("16"), length=16, batch_size=4, seed=1)
    assert not set(a.seeds) & set(b.seeds)


@pytest.mark.parametrize("rule", UNMASKING_RULES.names())
@pytest.mark.parametrize("remasker", [SnapshotRemasker(), RandomRemasker()], ids=["snapshot", "random"])
def test_batch_row_equals_that_row_generated_alone(rule, remasker):
    plan = StagePlan([Stage(4), Stage(None, remask_ratio=0.5, remasker=remasker)])
    kwargs = dict(length=16, prompt=[1], options=GenerateOptions(unmasking=UNMASKING_RULES.build(rule)))
    batch = generate(ORACLE, plan, batch_size=3, seed=[7, 8, 9], **kwargs)
    alone = generate(ORACLE, plan, batch_size=1, seed=[8], **kwargs)
    assert torch.equal(batch.tokens[1], alone.tokens[0])
    assert torch.equal(batch.scores[1], alone.scores[0])
    for stage_batch, stage_alone in zip(batch.trace, alone.trace, strict=True):
        assert torch.equal(stage_batch.remasked[1], stage_alone.remasked[0])
        assert stage_batch.nfe[1] == stage_alone.nfe[0]


def test_cache_and_no_cache_identical_over_a_plan():
    plan = StagePlan.parse("4 -> 8@0.5 -> 16@0.25")
    a = generate(ORACLE, plan, length=16, batch_size=3, seed=3, prompt=[1, 2, 3, 0, 1])
    b = generate(
        ORACLE,
        plan,
        length=16,
        batch_size=3,
        seed=3,
        prompt=[1, 2, 3, 0, 1],
        options=GenerateOptions(step=UncachedStep()),
    )
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.scores, b.scores)


def test_snapshot_remasks_the_lowest_scores():
    result = generate(ORACLE, PLAN, length=16, batch_size=4, seed=5)
    scores, remasked = result.trace[0].scores, result.trace[1].remasked
    highest_remasked = torch.where(remasked, scores, -torch.inf).max(dim=1).values
    lowest_kept = torch.where(remasked, torch.inf, scores).min(dim=1).values
    assert (highest_remasked <= lowest_kept).all()


def test_post_hoc_remasking_with_the_model_scorer():
    plan = StagePlan(
        [Stage(4), Stage(None, remask_ratio=0.5, remasker=PostHocRemasker(model_scorer(ORACLE)))]
    )
    result = generate(ORACLE, plan, length=16, batch_size=2, seed=0)
    assert (result.trace[1].remasked.sum(dim=1) == 8).all()


def test_model_scorer_is_the_probability_of_each_token_under_one_forward():
    tokens = torch.tensor([[0, 1, 2, 3, 0, 0]])
    scores = model_scorer(ORACLE)(tokens)
    probs = torch.softmax(ORACLE.logits(tokens)[..., :MASK], dim=-1)
    torch.testing.assert_close(scores, probs.gather(-1, tokens[..., None]).squeeze(-1))


def test_stop_at_eos_pads_after_the_first_generated_eos():
    eos = 0  # the oracle emits token 0 often
    options = GenerateOptions(bos_id=eos)
    result = truncate_at_eos(generate(ORACLE, PLAN, length=16, batch_size=4, seed=2, options=options), eos)
    for row, n in zip(result.tokens, result.lengths.tolist(), strict=True):
        generated = row[1:].tolist()
        first = generated.index(eos) + 2 if eos in generated else 16
        assert n == first
        assert (row[n:] == eos).all()
    assert torch.equal(result.padding, torch.arange(16)[None, :] >= result.lengths[:, None])


def test_to_dict_is_json_serialisable():
    result = generate(ORACLE, PLAN, length=16, batch_size=2, seed=0, options=GenerateOptions(bos_id=0))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["tokens"] == result.tokens.tolist() and data["scores"][0][0] == "inf"
    assert data["trace"][1]["remasked"] == result.trace[1].remasked.tolist()


def test_argument_errors_name_the_parameter():
    with pytest.raises(
        ValueError, match=r"seed must be an int or one int per row \(got 1 seeds, batch_size 2\)"
    ):
        generate(ORACLE, PLAN, length=16, batch_size=2, seed=[1])
    with pytest.raises(ValueError, match=r"eos_id must be a token id \(an int >= 0\) \(got None\)"):
        truncate_at_eos(generate(ORACLE, PLAN, length=16), None)
    with pytest.raises(TypeError, match=r"options must be a GenerateOptions or None \(got dict\)"):
        generate(ORACLE, PLAN, length=16, options={"bos_id": 0})
    with pytest.raises(TypeError, match=r"tracker must be an object, not the name 'snapshot'"):
        GenerateOptions(tracker="snapshot")
    with pytest.raises(ValueError, match="prompt must be"):
        generate(ORACLE, PLAN, length=16, batch_size=2, prompt=torch.zeros(3, 2, dtype=torch.long))
