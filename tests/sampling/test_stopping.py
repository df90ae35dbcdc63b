"""Variable-length sampling (dind.sampling.stopping): BD3-LM's stop at EOS and on low entropy inside
the first stage; later stages refine each row at its own length; where and why each row stopped is
in the result."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dind import models
from dind.models import UncachedStep
from dind.sampling import (
    GenerateOptions,
    StagePlan,
    continue_plan,
    generate,
    regenerate_rows,
    truncate_at_eos,
)
from dind.sampling.stopping import (
    STOP_REASONS,
    VariableLength,
    batch_unigram_entropy,
    default_min_entropy,
)
from dind.sampling.windows import WindowWarning

EOS = 256


def micro():
    generator = torch.Generator().manual_seed(0)
    return models.build("micro", init="random", dropout=0.0, generator=generator).eval()


MICRO = micro()


def UNCACHED(opts):  # noqa: N802
    return opts.evolve(step=UncachedStep())


def options(**stop) -> GenerateOptions:
    return GenerateOptions(bos_id=EOS, stop=VariableLength(EOS, **stop))


@given(
    rows=st.lists(st.lists(st.integers(0, 6), min_size=24, max_size=24), min_size=1, max_size=4),
    end=st.integers(1, 24),
    prompt_length=st.integers(0, 3),
    window=st.integers(1, 12),
    min_entropy=st.floats(0, 2),
)
def test_check_follows_the_two_rules(rows, end, prompt_length, window, min_entropy):
    tokens = torch.tensor(rows)
    rule = VariableLength(eos_id=6, window=window, min_entropy=min_entropy)
    lengths, reasons = rule.check(tokens, end, prompt_length)
    for row, (length, reason) in enumerate(zip(lengths.tolist(), reasons.tolist(), strict=True)):
        drafted = tokens[row, :end].tolist()
        eos_at = [i for i in range(prompt_length, end) if drafted[i] == 6]
        tail = tokens[row : row + 1, end - window : end]
        low = end > window and float(batch_unigram_entropy(tail)) < min_entropy
        cut = max(end - window, prompt_length)
        expected = min([eos_at[0] + 1] if eos_at else [end] + ([cut] if low else []))
        if low:
            expected = min(cut, eos_at[0] + 1 if eos_at else end)
        assert length == expected
        if STOP_REASONS[reason] == "length":
            assert not eos_at and not low and length == end
        elif STOP_REASONS[reason] == "eos":
            assert eos_at and length == eos_at[0] + 1
        else:
            assert low and length == cut


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [("eos_id", -1, "token id"), ("eos_id", True, "token id"), ("window", 0, "positive integer"),
     ("min_entropy", float("nan"), "finite"), ("min_entropy", -0.5, ">= 0"), ("min_entropy", "4", "number")],
)  # fmt: skip
def test_bad_rules_are_refused_naming_the_field(field, value, rule):
    arguments = {"eos_id": EOS, field: value}
    with pytest.raises((ValueError, TypeError), match=field) as caught:
        VariableLength(**arguments)
    assert rule in str(caught.value)


def test_byte_tokenizers_get_a_lower_entropy_threshold():
    assert default_min_entropy("bytes") < 2.83 < default_min_entropy("gpt2") == 4.0


def _check_padding(result, prompt_length=1):
    for row, (length, stop) in enumerate(zip(result.lengths.tolist(), result.stops, strict=True)):
        tokens = result.tokens[row]
        assert bool((tokens != MICRO.mask_id).all())
        assert bool((tokens[length:] == EOS).all())
        generated = tokens[prompt_length:length]
        if stop == "eos":
            assert int(tokens[length - 1]) == EOS and int((generated == EOS).sum()) == 1
        elif stop == "length":
            assert length == tokens.shape[0] and not bool((generated == EOS).any())


def test_eos_only_in_one_stage_equals_truncating_afterwards():
    plan = StagePlan.parse("4")
    stopped = generate(MICRO, plan, length=128, batch_size=8, seed=1, options=options(min_entropy=0))
    full = generate(MICRO, plan, length=128, batch_size=8, seed=1, options=GenerateOptions(bos_id=EOS))
    truncated = truncate_at_eos(full, EOS)
    assert "eos" in stopped.stops and "length" in stopped.stops  # the seed gives both kinds
    assert torch.equal(stopped.tokens, truncated.tokens)
    assert torch.equal(stopped.lengths, truncated.lengths) and stopped.stops == truncated.stops
    assert bool((stopped.nfe <= full.nfe).all()) and bool((stopped.nfe < full.nfe).any())  # stopped rows stop
    _check_padding(stopped)


@pytest.mark.parametrize("plan", ["4 -> L@0.5", "4 -> 16@0.5:posthoc -> L@0.25"])
def test_each_row_is_the_same_alone_and_cached_as_uncached(plan):
    plan = StagePlan.parse(plan)
    opts = options(window=24, min_entropy=3.0)
    batch = generate(MICRO, plan, length=64, batch_size=4, seed=2, options=opts)
    assert set(batch.stops) == set(STOP_REASONS)  # all three: several groups refine apart
    uncached = generate(MICRO, plan, length=64, batch_size=4, seed=2, options=UNCACHED(opts))
    assert torch.equal(batch.tokens, uncached.tokens) and batch.stops == uncached.stops
    for row in range(4):
        alone = generate(MICRO, plan, length=64, seed=[batch.seeds[row]], options=opts)
        assert torch.equal(alone.tokens[0], batch.tokens[row]) and alone.stops[0] == batch.stops[row]
        assert torch.equal(alone.nfe, batch.nfe[row : row + 1])
    _check_padding(batch)
    positions = torch.arange(64)
    drafted = batch.trace[0].tokens  # stage 1 pads a stopped row with EOS from its length on
    first_eos = torch.where((drafted == EOS) & (positions >= 1), positions, 64).min(dim=1).values
    for stage in batch.trace[1:]:  # later stages never touch stage 1's padding
        assert not bool((stage.remasked & (positions[None, :] > first_eos[:, None])).any())


def test_later_stages_attend_to_each_rows_own_length():
    seen = []
    inner = MICRO.attention

    def spy(query, key, value, mask):
        seen.append(key.shape[-2])
        return inner(query, key, value, mask)

    model = micro()
    model.set_attention_backend(spy)
    plan = StagePlan.parse("4 -> L@0.5")
    result = generate(model, plan, length=64, seed=[11], options=options(window=16, min_entropy=2.6))
    (length,) = result.lengths.tolist()
    assert result.stops[0] != "length" and length < 64
    stage_two = seen[-result.trace[1].forward_passes :]
    # stage 2 ran at the row's stage-1 length (a refined EOS may have shortened it since)
    assert stage_two and len(set(stage_two)) == 1 and length <= stage_two[0] < 64


def test_stops_work_with_windows():
    plan = StagePlan.parse("4 -> L@0.5")
    opts = options(window=32, min_entropy=3.3).evolve(context=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WindowWarning)
        cached = generate(MICRO, plan, length=96, batch_size=4, seed=2, options=opts)
        uncached = generate(MICRO, plan, length=96, batch_size=4, seed=2, options=UNCACHED(opts))
    assert torch.equal(cached.tokens, uncached.tokens) and cached.stops == uncached.stops
    _check_padding(cached)


def test_the_result_records_where_and_why():
    result = generate(MICRO, StagePlan.parse("4"), length=64, batch_size=3, seed=0)
    assert result.stops == ("length",) * 3 and result.to_dict()["stops"] == ["length"] * 3
    plan = StagePlan.parse("4")
    stopped = generate(MICRO, plan, length=64, batch_size=3, seed=0, options=options(window=8))
    assert set(stopped.stops) <= set(STOP_REASONS)
    assert stopped.to_dict()["lengths"] == stopped.lengths.tolist()


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_a_stop_is_refused_where_rows_must_keep_their_length(seed):
    plan = StagePlan.parse("4 -> L@0.5")
    draft = generate(MICRO, StagePlan.parse("4"), length=32, seed=seed, options=GenerateOptions(bos_id=EOS))
    with pytest.raises(ValueError, match="continue_plan cannot apply options.stop"):
        continue_plan(MICRO, plan, draft, options=options())
    with pytest.raises(ValueError, match="regenerate_rows cannot apply options.stop"):
        regenerate_rows(MICRO, plan, draft, [0], options=options())


def test_options_refuse_a_stop_that_is_not_a_rule():
    with pytest.raises(TypeError, match="stop"):
        GenerateOptions(stop="eos")
