"""Context windows (dind.sampling.windows): beyond the model's context every forward sees at most
``context`` positions; a window covering the length changes nothing; the cached windowed step
equals the uncached forward over the same window."""

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind import models
from dind.models import StaticStep, UncachedStep
from dind.sampling import GenerateOptions, StagePlan, generate
from dind.sampling.windows import Window, WindowWarning, stage_window

MICRO = models.build("micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)).eval()
OPTIONS = GenerateOptions(bos_id=256)


class Spy:
    """An attention backend that records the key length of every call, then computes as sdpa."""

    def __init__(self, inner):
        self.inner, self.keys = inner, []

    def __call__(self, query, key, value, mask):
        self.keys.append(key.shape[-2])
        return self.inner(query, key, value, mask)


@pytest.fixture
def spy():
    model = models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()
    recorder = Spy(model.attention)
    model.set_attention_backend(recorder)
    return model, recorder


@given(
    blocks=st.integers(1, 40),
    block=st.sampled_from([1, 2, 4, 8]),
    context_blocks=st.integers(1, 8),
    data=st.data(),
)
def test_a_block_window_holds_the_block_and_at_most_context_positions(blocks, block, context_blocks, data):
    context = block * context_blocks
    slide = block * data.draw(st.integers(1, context_blocks))
    window = Window(context, slide)
    for end in range(block, block * blocks + 1, block):
        lo = window.block_start(end)
        assert 0 <= lo <= end - block and end - lo <= context and lo % slide == 0


@given(length=st.integers(2, 300), context=st.integers(1, 64), data=st.data())
def test_refinement_windows_reveal_every_position_once_left_to_right(length, context, data):
    window = Window(context, data.draw(st.integers(1, context)))
    spans = window.refine_spans(length)
    assert spans[0][:2] == (0, 0) and spans[-1][2] == length
    for (lo, start, end), previous in zip(spans, [None, *spans[:-1]], strict=True):
        assert 0 <= lo <= start < end and end - lo <= context
        assert start == (0 if previous is None else previous[2])  # contiguous, no overlap


def test_a_window_covering_the_length_changes_nothing():
    plan = StagePlan.parse("4 -> L@0.5")
    kwargs = dict(length=64, batch_size=2, seed=3)
    base = generate(MICRO, plan, **kwargs, options=OPTIONS)
    for options, text in (
        (OPTIONS.evolve(context=64), "4 -> L@0.5"),
        (OPTIONS, "4{context=128} -> L@0.5{context=64}"),
    ):
        again = generate(MICRO, StagePlan.parse(text), **kwargs, options=options)
        assert torch.equal(base.tokens, again.tokens) and torch.equal(base.scores, again.scores)
        assert torch.equal(base.nfe, again.nfe)


@pytest.mark.parametrize(
    "text", ["4{context=16} -> L@0.5{context=16}", "4{context=16,slide=8} -> L@0.5{context=16,slide=4}"]
)
def test_no_forward_sees_more_than_the_context(spy, text):
    model, recorder = spy
    for step in (None, UncachedStep()):
        recorder.keys.clear()
        options = OPTIONS if step is None else OPTIONS.evolve(step=step)
        result = generate(model, StagePlan.parse(text), length=64, batch_size=2, seed=1, options=options)
        assert not (result.tokens == model.mask_id).any()
        assert recorder.keys and max(recorder.keys) <= 16


@pytest.mark.parametrize("slide", [4, 8, 16])
def test_the_cached_windowed_step_equals_the_uncached_window(slide):
    plan = StagePlan.parse(f"4{{context=16,slide={slide}}} -> 8@0.5{{context=16}} -> L@0.25{{context=16}}")
    kwargs = dict(length=48, batch_size=2, seed=7, prompt=[72, 105])
    cached = generate(MICRO, plan, **kwargs, options=OPTIONS)
    uncached = generate(MICRO, plan, **kwargs, options=OPTIONS.evolve(step=UncachedStep()))
    static = generate(MICRO, plan, **kwargs, options=OPTIONS.evolve(step=StaticStep()))
    assert torch.equal(cached.tokens, uncached.tokens) and torch.equal(cached.nfe, uncached.nfe)
    assert torch.equal(cached.tokens, static.tokens)
    assert not torch.equal(
        cached.tokens,
        generate(MICRO, StagePlan.parse("4 -> 8@0.5 -> L@0.25"), **kwargs, options=OPTIONS).tokens,
    )


def test_beyond_model_length_the_default_window_is_used_and_said():
    plan = StagePlan.parse("4 -> L@0.5")  # micro: model_length 128
    with pytest.warns(
        WindowWarning, match=r"length 256 > the model's model_length 128: .* windows of at most 128"
    ):
        result = generate(MICRO, plan, length=256, seed=0, options=OPTIONS)
    assert result.tokens.shape == (1, 256) and not (result.tokens == MICRO.mask_id).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate(MICRO, plan, length=128, seed=0, options=OPTIONS)  # within the context: silent
    with pytest.raises(ValueError, match=r"stage 2: context must be <= the model's model_length, .*got 256"):
        generate(MICRO, StagePlan.parse("4 -> L@0.5{context=256}"), length=256, seed=0, options=OPTIONS)
    with pytest.raises(ValueError, match=r"context must be <= the model's model_length, .*got 512"):
        generate(MICRO, plan, length=256, seed=0, options=OPTIONS.evolve(context=512))


def test_bad_windows_name_the_rule():
    with pytest.raises(
        ValueError,
        match="stage 1: context must be a multiple of the block size .got context 10, block size 4",
    ):
        stage_window(4, 64, context=10, slide=None, stage_index=1)
    with pytest.raises(
        ValueError, match="stage 2: slide must be a multiple of the block size and at most the context"
    ):
        stage_window(4, 64, context=16, slide=6, stage_index=2)
    with pytest.raises(ValueError, match=r"slide must be in \[1, context\] .got slide 32, context 16"):
        stage_window(None, 64, context=16, slide=32, stage_index=2)
    assert stage_window(4, 64, context=64, slide=6, stage_index=1) is None  # covers the length
    with pytest.raises(ValueError, match="context must be a positive integer .got 'x'"):
        StagePlan.parse("4{context=x}")
    plan = StagePlan.parse("4{context=16,slide=8} -> L@0.5{context=16}")
    assert StagePlan.parse(str(plan)) == plan


@pytest.mark.parametrize("step", [None, StaticStep])
def test_the_kv_cache_holds_the_window_not_the_length(monkeypatch, step):
    from dind.attention import cache as cache_module

    allocated = []
    original = cache_module.KVCache.__init__

    def counting_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        allocated.append(sum(t.numel() * t.element_size() for t in [*self.keys, *self.values]))

    monkeypatch.setattr(cache_module.KVCache, "__init__", counting_init)
    plan = StagePlan.parse("4{context=32}")

    def cache_bytes(length, model=MICRO):
        options = OPTIONS if step is None else OPTIONS.evolve(step=step())  # a fresh step: its own caches
        allocated.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WindowWarning)
            generate(model, plan if model is MICRO else StagePlan.parse("4"), length=length, options=options)
        return max(allocated)

    at_context, at_four_times = cache_bytes(32), cache_bytes(128)
    assert at_four_times == at_context  # bounded by the window: 4x the length, the same cache
    unwindowed = models.build("micro", init="random", dropout=0.0, model_length=128).eval()
    assert cache_bytes(128, unwindowed) == 4 * at_context  # without a window it grows with the length
