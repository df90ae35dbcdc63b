"""The static-shape cached step (dind.models.static_step): logits parity with the dynamic cache
(prefix and full-length masked attention), identical samples through generate, fresh folded
weights after any kind of weight write (in place, through .data, load_state_dict), validation;
the compiled step (slow) gives the same samples and follows weight writes (its weights are frozen
into the graph)."""

import copy

import pytest
import torch

from dind import models
from dind.models import CompiledStep, DynamicStep, StaticStep
from dind.models.static_step import StaticDenoiser
from dind.models.step_compile import CompileError
from dind.sampling import UNMASKING_RULES, GenerateOptions, StagePlan, generate
from dind.sampling.oracles import MarkovOracle

STATIC = GenerateOptions(bos_id=256, step=StaticStep())
DYNAMIC = GenerateOptions(bos_id=256)


@pytest.fixture(scope="module")
def micro():
    return models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()


@pytest.mark.parametrize("full_length", [False, True], ids=["prefix", "full_length_masked"])
def test_static_step_logits_equal_the_dynamic_cache_block_by_block(micro, full_length):
    tokens = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    step = StaticStep(full_length=full_length)
    stepper = step.bind(micro)
    assert step.bind(micro) is stepper  # one bound denoiser per step object: graphs and cache reused
    assert "_dind" not in "".join(vars(micro))  # nothing is stored on the model
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
def test_static_step_gives_the_dynamic_samples(micro, rule):
    kwargs = dict(length=32, batch_size=3, seed=4, prompt=[72, 105])
    unmasking = UNMASKING_RULES.build(rule)
    dynamic = generate(micro, PLAN, **kwargs, options=DYNAMIC.evolve(unmasking=unmasking))
    static = generate(micro, PLAN, **kwargs, options=STATIC.evolve(unmasking=unmasking))
    assert torch.equal(static.tokens, dynamic.tokens)
    assert torch.equal(static.nfe, dynamic.nfe)
    torch.testing.assert_close(static.scores, dynamic.scores)


def _writes():
    """Ways to change weights: in place (version counters move), through .data (they do not:
    BD3-LM's EMA swap), and load_state_dict (copy_ under no_grad)."""

    def in_place(model, factor):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(factor)

    def through_data(model, factor):
        for parameter in model.parameters():
            parameter.data.copy_(parameter.data * factor)

    def state_dict(model, factor):
        model.load_state_dict({name: value * factor for name, value in model.state_dict().items()})

    return [in_place, through_data, state_dict]


@pytest.mark.parametrize("write", _writes(), ids=lambda write: write.__name__)
def test_static_step_follows_every_kind_of_weight_write(micro, write):
    model = copy.deepcopy(micro)
    step = StaticStep()  # one object reused across calls, as a caller would
    kwargs = dict(length=32, batch_size=2, seed=3)
    before = generate(model, PLAN, **kwargs, options=STATIC.evolve(step=step))
    write(model, 1.5)
    after_dynamic = generate(model, PLAN, **kwargs, options=DYNAMIC)
    after_static = generate(model, PLAN, **kwargs, options=STATIC.evolve(step=step))
    assert not torch.equal(after_dynamic.tokens, before.tokens)
    assert torch.equal(after_static.tokens, after_dynamic.tokens)
    torch.testing.assert_close(after_static.scores, after_dynamic.scores)


def test_step_objects_are_validated(micro):
    with pytest.raises(TypeError, match=r"step must be an object, not the name 'static'; build it with "):
        GenerateOptions(step="static")
    with pytest.raises(TypeError, match=r"step must be a DecodeStep \(got int\)"):
        GenerateOptions(step=3)
    oracle = MarkovOracle(torch.tensor([0.5, 0.5]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"the static step needs a dind DiT \(got MarkovOracle\)"):
        generate(oracle, StagePlan.parse("4"), length=8, seed=0, options=GenerateOptions(step=StaticStep()))
    with pytest.raises(ValueError, match=r"start must equal the cached length"):
        stepper = StaticStep().bind(micro)
        stepper.cached_logits(torch.zeros(1, 4, dtype=torch.long), cache=stepper.new_cache(1, 8), start=4)
    assert DynamicStep().bind(micro) is micro


@pytest.mark.slow
def test_compiled_step_gives_the_eager_samples(micro):
    # inductor on CPU (CUDA graphs on GPU: benchmarks/decode_gpu.py); one compile per block width
    kwargs = dict(length=32, batch_size=2, seed=9)
    plan = StagePlan.parse("4 -> 32@0.5")
    model = copy.deepcopy(micro)
    compiled_step = CompiledStep()
    options = DYNAMIC.evolve(step=compiled_step)
    eager = generate(model, plan, **kwargs, options=DYNAMIC)
    compiled = generate(model, plan, **kwargs, options=options)
    assert torch.equal(compiled.tokens, eager.tokens)
    assert torch.equal(compiled.nfe, eager.nfe)
    # inductor froze the weights into the graph: every kind of write must recompile
    for write in _writes():
        write(model, 1.5)
        eager = generate(model, plan, **kwargs, options=DYNAMIC)
        compiled = generate(model, plan, **kwargs, options=options)
        assert torch.equal(compiled.tokens, eager.tokens), write.__name__


def test_a_failed_compile_is_one_clear_error(micro, monkeypatch):
    # a machine without a working C++ compiler: inductor fails; the user gets one line, not a trace
    import dind.models.step_compile as module

    options = {**module.CPU_COMPILE_OPTIONS, "cpp.cxx": ("/nonexistent/c++",), "force_disable_caches": True}
    monkeypatch.setattr(module, "CPU_COMPILE_OPTIONS", options)
    stepper = CompiledStep().bind(micro)
    cache = stepper.new_cache(1, 8)
    with pytest.raises(
        CompileError,
        match=r"the compiled step \(CompiledStep, --step-mode compiled\) could not compile the decode",
    ):
        stepper.append_to_cache(torch.zeros(1, 4, dtype=torch.long), cache=cache, start=0)


@pytest.mark.slow
def test_the_cuda_compile_options_are_accepted(micro):
    # the CUDA branch cannot run here; its torch.compile options (CUDA graphs + guard filter) must
    # at least be accepted: on CPU tensors inductor skips the CUDA graphs and runs the step
    import dind.models.step_compile as module

    stepper = StaticDenoiser(micro, full_length=True)
    stepper._step = module.compile_step(module.fresh(stepper._eager_step), torch.device("cuda"))
    reference = StaticDenoiser(micro, full_length=True)
    tokens = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    cache, expected_cache = stepper.new_cache(1, 8), reference.new_cache(1, 8)
    got = stepper.cached_logits(tokens[:, :4], cache=cache, start=0)
    torch.testing.assert_close(got, reference.cached_logits(tokens[:, :4], cache=expected_cache, start=0))


def test_the_attention_form_follows_the_device_unless_given(micro):
    assert StaticStep().bind(micro).full_length is False  # CPU: the exact prefix
    assert StaticStep(full_length=True).bind(micro).full_length is True
