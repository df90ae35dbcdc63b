"""Stage plans: text form round trip, defaults, and validation errors that name the stage."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.remaskers import REMASKERS, PostHocRemasker, RandomRemasker, SnapshotRemasker
from dind.sampling.confidence import CONFIDENCE_TRACKERS, MarginConfidence
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.unmasking import UNMASKING_RULES


def toy_scorer(tokens):
    return tokens.double()


POSTHOC = PostHocRemasker(toy_scorer)
EXTRA = {"posthoc": POSTHOC}  # a mapping still overrides the registry


def _remasker(name: str):
    return REMASKERS.build(name)  # every remasker builds without arguments (the model comes at run time)


# short decimals as a user writes them, and arbitrary floats (1/3) that must survive str -> parse too
ratio = st.one_of(
    st.integers(1, 100).map(lambda n: n / 100), st.floats(0.0, 1.0, exclude_min=True, allow_subnormal=False)
)
option = st.one_of(st.integers(1, 400).map(lambda n: n / 100), st.floats(1e-3, 10.0, allow_subnormal=False))


@st.composite
def stage(draw, first: bool):
    return Stage(
        block_size=draw(st.one_of(st.none(), st.integers(1, 4096))),
        remask_ratio=0.0 if first else draw(st.one_of(st.just(0.0), ratio)),
        remasker=_remasker(draw(st.sampled_from(REMASKERS.names()))),
        steps=draw(st.one_of(st.none(), st.integers(1, 256))),
        temperature=draw(st.one_of(st.just(1.0), option)),
        top_p=draw(st.one_of(st.just(1.0), ratio)),
        unmasking=draw(
            st.one_of(st.none(), st.sampled_from(UNMASKING_RULES.names()).map(UNMASKING_RULES.build))
        ),
        tracker=draw(
            st.one_of(st.none(), st.sampled_from(CONFIDENCE_TRACKERS.names()).map(CONFIDENCE_TRACKERS.build))
        ),
    )


@st.composite
def plan(draw):
    rest = draw(st.lists(stage(first=False), max_size=4))
    return StagePlan((draw(stage(first=True)), *rest))


@given(plan())
def test_generated_plans_round_trip(plan):
    text = str(plan)
    assert StagePlan.parse(text) == plan
    assert str(StagePlan.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["4", "4 -> 1024@0.5", "4 -> 64@0.25 -> 1024@0.5", "4/8 -> L@0.5:random{top_p=0.9}"]
)
def test_examples_round_trip_exactly(text):
    assert str(StagePlan.parse(text)) == text


def test_examples_parse_to_the_stated_stages():
    assert StagePlan.parse("4 -> 1024@0.5") == StagePlan((Stage(4), Stage(1024, 0.5)))
    assert StagePlan.parse("4 -> 64@0.25 -> 1024@0.5").block_sizes() == (4, 64, 1024)
    first, second = StagePlan.parse("4/8 -> L@0.5:random{top_p=0.9}")
    assert first == Stage(4, steps=8)
    assert second == Stage(None, 0.5, remasker=RandomRemasker(), top_p=0.9)
    assert isinstance(first.remasker, SnapshotRemasker)  # the default


def test_spaces_and_options_are_accepted():
    plan = StagePlan.parse(" 8 ->L @ 0.3 : random / 4 { temperature = 0.7 , top_p = 0.95 } ")
    assert plan.stages[1] == Stage(None, 0.3, RandomRemasker(), steps=4, temperature=0.7, top_p=0.95)
    assert str(plan) == "8 -> L@0.3:random/4{temperature=0.7,top_p=0.95}"


def test_single_and_container_protocol():
    plan = StagePlan.single(None)
    assert len(plan) == 1 and list(plan) == [Stage(None)] and str(plan) == "L"


def test_posthoc_parses_by_name_and_a_mapping_overrides_the_registry():
    assert StagePlan.parse("4 -> 16@0.5:posthoc").stages[1].remasker == PostHocRemasker()
    plan = StagePlan.parse("4 -> 16@0.5:posthoc", remaskers=EXTRA)
    assert plan.stages[1].remasker is POSTHOC
    # its scorer has no text form: str never raises, and never prints a plan that parses to another
    assert str(plan).startswith("4 -> 16@0.5:<PostHocRemasker(")
    with pytest.raises(
        ValueError, match=r"stage 2: .* holds a component printed as <\.\.\.>: it has no text form"
    ):
        StagePlan.parse(str(plan))


@pytest.mark.parametrize("name", CONFIDENCE_TRACKERS.names())
def test_tracker_per_stage_round_trips(name):
    text = f"4 -> 256@0.5:snapshot{{tracker={name}}}"
    plan = StagePlan.parse(text)
    assert plan.stages[1].tracker == CONFIDENCE_TRACKERS.build(name) and plan.stages[0].tracker is None
    assert str(plan) == text.replace(":snapshot", "")
    assert StagePlan.parse(str(plan)) == plan


def test_tracker_option_errors():
    with pytest.raises(ValueError, match=r"stage 2 .*unknown confidence_trackers 'nosuch'"):
        StagePlan.parse("4 -> L@0.5{tracker=nosuch}")
    assert str(StagePlan([Stage(4, tracker=object())])).startswith("4{tracker=<object object at")
    assert str(StagePlan([Stage(4, tracker=MarginConfidence())])) == "4{tracker=margin}"


# ---- invalid plans ----


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4@0.5 -> 1024@0.5", r"stage 1 has nothing to remask: its remask_ratio must be 0 \(got 0.5\)"),
        ("4 -> 1024@1.5", r"stage 2 \('1024@1.5'\): remask_ratio must be in \[0, 1\] \(got 1.5\)"),
        (
            "4 -> 64@0.25 -> 1024@-0.5",
            r"stage 3 \('1024@-0.5'\): remask_ratio must be in \[0, 1\] \(got -0.5\)",
        ),
        ("4 -> 0@0.5", r"stage 2 \('0@0.5'\): block_size must be a positive integer or None \(got 0\)"),
        (
            "4 -> L@0.5/0",
            r"stage 2 \('L@0.5/0'\): steps must be a positive integer <= 1,048,576 .* \(got 0\)",
        ),
        ("4 -> L{top_p=0}", r"stage 2 \('L\{top_p=0\}'\): top_p must be in \(0, 1\] \(got 0.0\)"),
        ("4 -> L{temperature=0}", r"stage 2 .*temperature must be > 0 \(got 0.0\)"),
        ("4 -> L{beam=2}", r"stage 2 .*unknown option 'beam' \(known: temperature, top_p, unmasking, tr"),
        ("4 -> L:nosuch", r"stage 2 .*unknown remaskers 'nosuch'"),
        ("4 -> -> L", r"stage 2: cannot parse ''"),
        ("4 -> x@0.5", r"stage 2: cannot parse 'x@0.5'; expected e.g."),
    ],
)
def test_invalid_text_names_the_stage(text, message):
    with pytest.raises(ValueError, match=message):
        StagePlan.parse(text)


def test_empty_plan_is_rejected():
    with pytest.raises(ValueError, match="stages must not be empty"):
        StagePlan(())


@pytest.mark.parametrize(
    ("text", "length", "message"),
    [
        ("4 -> 1024@0.5", 512, r"stage 2: block_size must be <= length \(got 1024, length 512\)"),
        ("4 -> 48@0.5 -> L@0.5", 1024, r"stage 2: block_size must divide length \(got 48, length 1024\)"),
        ("6 -> L@0.5", 1024, r"stage 1: block_size must divide length \(got 6, length 1024\)"),
    ],
)
def test_validate_names_the_stage_rule_and_value(text, length, message):
    with pytest.raises(ValueError, match=message):
        StagePlan.parse(text).validate(length)


@pytest.mark.parametrize(("length", "prompt"), [(0, 0), (16, 16), (16, -1)])
def test_validate_rejects_bad_lengths(length, prompt):
    with pytest.raises(ValueError, match=r"need length >= 1 and 0 <= prompt_length < length"):
        StagePlan.parse("L").validate(length, prompt_length=prompt)


@given(plan(), st.sampled_from([64, 96, 1024, 4096]))
def test_validate_accepts_exactly_the_dividing_block_sizes(plan, length):
    fits = all(size is None or length % size == 0 for size in plan.block_sizes())
    generated = length - length // 2
    remasks = all(not stage.remask_ratio or stage.remask_ratio * generated >= 1 for stage in plan)
    if fits and remasks:
        plan.validate(length, prompt_length=length // 2)
    elif fits:
        with pytest.raises(ValueError, match=r"^stage \d+: remask_ratio .* remasks no position"):
            plan.validate(length, prompt_length=length // 2)
    else:
        with pytest.raises(ValueError, match=r"^stage \d+: block_size must"):
            plan.validate(length)


def test_unregistered_remasker_has_no_text_form():
    class Custom:
        def keys(self, tokens, scores, eligible, *, context):
            return scores

    assert str(Stage(4, remasker=Custom())).startswith("4:<")
    with pytest.raises(ValueError, match="it has no text form"):
        StagePlan.parse(str(StagePlan([Stage(4), Stage(4, remask_ratio=0.5, remasker=Custom())])))


def test_a_stage_unmasking_rule_round_trips_with_its_arguments():
    from dind.sampling.unmasking import ConfidenceThreshold

    plan = StagePlan.parse("4{unmasking=confidence_topk} -> L@0.5{top_p=0.9,unmasking=confidence_threshold}")
    assert plan.stages[1].unmasking == ConfidenceThreshold()
    assert StagePlan.parse(str(plan)) == plan
    configured = StagePlan((Stage(4, unmasking=ConfidenceThreshold(threshold=0.5)),))
    assert str(configured) == "4{unmasking=confidence_threshold(threshold=0.5)}"
    assert StagePlan.parse(str(configured)) == configured
    with pytest.raises(ValueError, match=r"stage 1 .*nucleus"):
        StagePlan.parse("4{unmasking=nucleus}")


def test_remasker_arguments_in_plan_text_round_trip():
    from dind.remaskers import MaskedPostHocRemasker

    plan = StagePlan.parse("4 -> 16@0.5:posthoc_masked(chunks=8, block_size=4)")
    assert plan.stages[1].remasker == MaskedPostHocRemasker(chunks=8, block_size=4)
    assert str(plan) == "4 -> 16@0.5:posthoc_masked(chunks=8,block_size=4)"
    assert StagePlan.parse(str(plan)) == plan
    assert str(StagePlan.parse("4 -> 16@0.5:posthoc_masked(chunks=4)")) == "4 -> 16@0.5:posthoc_masked"
    with pytest.raises(ValueError, match=r"stage 2 .*chunks"):
        StagePlan.parse("4 -> 16@0.5:posthoc_masked(chunks=0)")
    with pytest.raises(ValueError, match=r"stage 2 .*arguments must be key=value \(got '8'"):
        StagePlan.parse("4 -> 16@0.5:posthoc_masked(8)")
    with pytest.raises(
        ValueError,
        match=r"stage 2 .*posthoc_masked does not take \['chunk'\] \(accepted: \['chunks', 'block_size'\]\)",
    ):
        StagePlan.parse("4 -> 16@0.5:posthoc_masked(chunk=8)")
