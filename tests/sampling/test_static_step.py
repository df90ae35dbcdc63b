"""The static-shape cached step (dind.models.static_step): logits parity with the dynamic cache
(prefix and full-length masked attention), identical samples through generate, refreshed folded
weights after a weight update, validation; the compiled step (slow) gives the same samples and
follows weight updates (its weights are frozen into the graph)."""

import pytest
import torch

from dind import models
from dind.models.static_step import StaticStep, static_step
from dind.sampling import UNMASKING_RULES, StagePlan, generate
from dind.sampling.oracles import MarkovOracle


@pytest.fixture(scope="module")
def micro():
    return models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()


@pytest.mark.parametrize("full_length", [False, True], ids=["prefix", "full_length_masked"])
def test_static_step_logits_equal_the_dynamic_cache_block_by_block(micro, full_length):
    tokens = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    stepper = StaticStep(micro, full_length=full_length)
    assert static_step(micro) is static_step(micro)  # one wrapper per model: graphs and cache reused
    reference = micro.new_cache(2, 24)
    for stage in range(2):  # the second stage reuses the (reset) preallocated cache
        cache, width = stepper.new_cache(2, 24), 4 + 4 * stage
        reference.reset()
        assert cache.filled == 0
        for start in range(0, 24, width):
            block = tokens[:, start : start + width]
            noisy = block.masked_fill(torch.arange(width) % 2 == 0, micro.mask_id)
            expected = micro.cached_logits(noisy, cache=reference, start=start)
            torch.testing.assert_close(stepper.cached_logits(noisy, cache=cache, start=start), expected)
            micro.append_to_cache(block, cache=reference, start=start)
            stepper.append_to_cache(block, cache=cache, start=start)
            assert cache.filled == reference.filled == start + width
            for layer in range(len(cache.keys)):
                torch.testing.assert_close(
                    cache.keys[layer][:, :, : start + width], reference.keys[layer][:, :, : start + width]
                )


PLAN = StagePlan.parse("4 -> 8@0.5 -> 32@0.25")


@pytest.mark.parametrize("rule", ["first_hitting", "confidence_topk"])
def test_static_step_mode_gives_the_dynamic_samples(micro, rule):
    kwargs = dict(
        length=32, batch_size=3, seed=4, bos_id=256, prompt=[72, 105], unmasking=UNMASKING_RULES.build(rule)
    )
    dynamic = generate(micro, PLAN, **kwargs)
    static = generate(micro, PLAN, step_mode="static", **kwargs)
    assert torch.equal(static.tokens, dynamic.tokens)
    assert torch.equal(static.nfe, dynamic.nfe)
    torch.testing.assert_close(static.scores, dynamic.scores)


def test_static_step_follows_in_place_weight_updates(micro):
    # an optimizer step updates weights in place: the folded snapshot must not go stale
    import copy

    model = copy.deepcopy(micro)
    kwargs = dict(length=32, batch_size=2, seed=3, bos_id=256)
    before = generate(model, PLAN, step_mode="static", **kwargs)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
    after_dynamic = generate(model, PLAN, **kwargs)
    after_static = generate(model, PLAN, step_mode="static", **kwargs)
    assert not torch.equal(after_dynamic.tokens, before.tokens)
    assert torch.equal(after_static.tokens, after_dynamic.tokens)
    torch.testing.assert_close(after_static.scores, after_dynamic.scores)
    for parameter in model.parameters():  # .data writes bump no version counter (EMA swaps)
        parameter.data.copy_(parameter.data / 1.5)
    again = generate(model, PLAN, step_mode="static", **kwargs)
    assert not torch.equal(again.tokens, after_static.tokens)
    assert torch.equal(again.tokens, generate(model, PLAN, **kwargs).tokens)


def test_step_mode_is_validated(micro):
    with pytest.raises(
        ValueError, match=r"step_mode must be one of \['dynamic', 'static', 'compiled'\] \(got 'fast'\)"
    ):
        generate(micro, PLAN, length=32, seed=0, step_mode="fast")
    with pytest.raises(
        ValueError, match=r"step_mode='static' is a cached step: it needs use_cache=True \(got False\)"
    ):
        generate(micro, PLAN, length=32, seed=0, step_mode="static", use_cache=False)
    oracle = MarkovOracle(torch.tensor([0.5, 0.5]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"the static step needs a dind DiT \(got MarkovOracle\)"):
        generate(oracle, StagePlan.parse("4"), length=8, seed=0, step_mode="static")
    with pytest.raises(ValueError, match=r"start must equal the cached length"):
        stepper = StaticStep(micro)
        stepper.cached_logits(torch.zeros(1, 4, dtype=torch.long), cache=stepper.new_cache(1, 8), start=4)


@pytest.mark.slow
def test_compiled_step_gives_the_eager_samples(micro):
    # inductor on CPU (CUDA graphs on GPU: benchmarks/decode_gpu.py); one compile per block width
    kwargs = dict(length=32, batch_size=2, seed=9, bos_id=256)
    plan = StagePlan.parse("4 -> 32@0.5")
    import copy

    model = copy.deepcopy(micro)
    eager = generate(model, plan, **kwargs)
    compiled = generate(model, plan, step_mode="compiled", **kwargs)
    assert torch.equal(compiled.tokens, eager.tokens)
    assert torch.equal(compiled.nfe, eager.nfe)
    with torch.no_grad():  # inductor froze the weights into the graph: an update must recompile
        for parameter in model.parameters():
            parameter.mul_(1.5)
    eager = generate(model, plan, **kwargs)
    compiled = generate(model, plan, step_mode="compiled", **kwargs)
    assert torch.equal(compiled.tokens, eager.tokens)


def test_a_failed_compile_is_one_clear_error(micro, monkeypatch):
    # a machine without a working C++ compiler: inductor fails; the user gets one line, not a trace
    import dind.models.static_step as module

    options = {**module.CPU_COMPILE_OPTIONS, "cpp.cxx": ("/nonexistent/c++",), "force_disable_caches": True}
    monkeypatch.setattr(module, "CPU_COMPILE_OPTIONS", options)
    stepper = StaticStep(micro, compiled=True)
    cache = stepper.new_cache(1, 8)
    with pytest.raises(
        module.CompileError, match=r"step_mode='compiled' could not compile the decode step on cpu"
    ):
        stepper.append_to_cache(torch.zeros(1, 4, dtype=torch.long), cache=cache, start=0)


@pytest.mark.slow
def test_the_cuda_compile_options_are_accepted(micro):
    # the CUDA branch cannot run here; its torch.compile options (CUDA graphs + guard filter) must
    # at least be accepted: on CPU tensors inductor skips the CUDA graphs and runs the step
    import dind.models.static_step as module

    stepper = StaticStep(micro, full_length=True)
    stepper._step = module._compile(module._fresh(stepper._eager_step), torch.device("cuda"))
    reference = StaticStep(micro, full_length=True)
    tokens = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    cache, expected_cache = stepper.new_cache(1, 8), reference.new_cache(1, 8)
    got = stepper.cached_logits(tokens[:, :4], cache=cache, start=0)
    torch.testing.assert_close(got, reference.cached_logits(tokens[:, :4], cache=expected_cache, start=0))


def test_the_attention_form_follows_the_device_unless_given(micro):
    assert StaticStep(micro).full_length is False  # CPU: the exact prefix
    assert StaticStep(micro, full_length=True).full_length is True
