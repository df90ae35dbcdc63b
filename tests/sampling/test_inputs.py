"""generate() refuses bad prompts, seeds and argument types, and stops on non-finite logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.errors import NonFiniteError
from dind.sampling import CONFIDENCE_TRACKERS, GenerateOptions, StagePlan, generate
from dind.sampling.oracles import MarkovOracle

TRANSITION = torch.tensor(
    [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]
)
ORACLE = MarkovOracle(torch.tensor([0.4, 0.3, 0.2, 0.1]), TRANSITION)  # vocab 5, MASK = 4
PLAN = StagePlan.parse("4 -> L@0.5")


def run(**kwargs):
    """generate with the oracle; GenerateOptions fields among ``kwargs`` go to the options."""
    fields = {"bos_id", "tracker", "unmasking"}
    options = GenerateOptions(**{name: kwargs.pop(name) for name in fields & set(kwargs)})
    arguments = {"length": 16, "batch_size": 2, "seed": 0, **kwargs}
    return generate(arguments.pop("model", ORACLE), arguments.pop("plan", PLAN), **arguments, options=options)


@pytest.mark.parametrize(
    ("prompt", "error", "match"),
    [
        ([1, 4, 2], ValueError, r"prompt holds the MASK id \(4\).*: 4 at position 1"),
        ([1, -1], ValueError, r"prompt holds negative id: -1 at position 1"),
        ([0, 7], ValueError, r"prompt holds id outside the vocabulary \[0, vocab_size=5\): 7 at position 1"),
        ([[1, 2], [3, 9]], ValueError, r"outside the vocabulary.*: 9 at row 1, position 1"),
        ([1.0, 2.0], TypeError, r"prompt must hold integer token ids \(got float 1.0 at position 0\)"),
        (
            torch.tensor([1.0, 2.0]),
            TypeError,
            r"prompt must hold integer token ids \(got a torch.float32 tensor\)",
        ),
        (
            torch.tensor([True, False]),
            TypeError,
            r"prompt must hold integer token ids \(got a torch.bool tensor\)",
        ),
        ([True, 1], TypeError, r"got bool True at position 0"),
        (
            [[1, 2], [3]],
            ValueError,
            r"prompt rows must all have the same length \(row 0 has 2 ids, row 1 has 1\)",
        ),
        ([[1, 2], 3], ValueError, r"prompt must be a list of ids or a list of rows"),
        (torch.zeros(2, 2, 2, dtype=torch.long), ValueError, r"prompt must be .* \(got shape \(2, 2, 2\)\)"),
        ("hello", TypeError, r"prompt must be token ids, not str 'hello'; encode the text"),
        ([[1, 2], [3, 0], [0, 0]], ValueError, r"prompt must be .* with batch=2 \(got \(3, 2\)\)"),
        (
            list(range(4)) * 4,
            ValueError,
            r"prompt is too long: 16 frozen tokens leave nothing to generate in length 16",
        ),
        (np.array([1, 2, 4]), ValueError, r"MASK id \(4\).*at position 2"),
    ],
)
def test_bad_prompts_name_the_prompt_and_the_value(prompt, error, match):
    with pytest.raises(error, match=match):
        run(prompt=prompt)


def test_good_prompts_of_every_form_agree():
    expected = run(prompt=[1, 2, 3]).tokens
    for form in (torch.tensor([1, 2, 3]), (1, 2, 3), np.array([1, 2, 3]), [[1, 2, 3], [1, 2, 3]],
                 torch.tensor([1, 2, 3], dtype=torch.int32)):  # fmt: skip
        assert torch.equal(run(prompt=form).tokens, expected)
    assert (expected[:, :3] == torch.tensor([1, 2, 3])).all()


def test_bos_rules():
    with pytest.raises(ValueError, match=r"bos_id must not be the MASK id \(got bos_id 4 == mask_id 4\)"):
        run(bos_id=4)
    with pytest.raises(ValueError, match=r"bos_id must be in \[0, vocab_size=5\) \(got 5\)"):
        run(bos_id=5)
    with pytest.raises(TypeError, match=r"bos_id must be an integer token id \(got float 1.0\)"):
        run(bos_id=1.0)
    with pytest.raises(ValueError, match=r"prompt is too long: 16 frozen tokens \(BOS included\)"):
        run(bos_id=0, prompt=[1] * 15)
    assert (run(bos_id=0, prompt=[1] * 13).tokens[:, 0] == 0).all()  # 2 generated: 0.5 remasks 1


@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [
        (-1, ValueError, r"seed must be in \[0, 2\*\*64\) \(got -1\)"),
        (2**64, ValueError, r"seed must be in \[0, 2\*\*64\) \(got 18446744073709551616\)"),
        (True, TypeError, r"seed must be an int .* \(got bool True\)"),
        (1.5, TypeError, r"seed must be an int .* \(got float 1.5\)"),
        ("7", TypeError, r"seed must be an int .* \(got str '7'\)"),
        ([1, 2.0], TypeError, r"seed\[1\] must be an int \(got float 2.0\)"),
        ([1, -3], ValueError, r"seed\[1\] must be in \[0, 2\*\*64\) \(got -3\)"),
        ([1, 2, 3], ValueError, r"got 3 seeds, batch_size 2"),
    ],
)
def test_bad_seeds(seed, error, match):
    with pytest.raises(error, match=match):
        run(seed=seed)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64 - 1))
def test_every_64_bit_seed_is_accepted_and_reproducible(seed):
    first = run(seed=[seed, seed], batch_size=2, length=8, plan=StagePlan.parse("4")).tokens
    assert torch.equal(first[0], first[1])  # the same per-row seed gives the same row


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"length": 0}, ValueError, r"length must be a positive integer \(got 0\)"),
        ({"length": 16.0}, TypeError, r"length must be a positive integer \(got float 16.0\)"),
        ({"batch_size": 0}, ValueError, r"batch_size must be a positive integer \(got 0\)"),
        ({"batch_size": "2"}, TypeError, r"batch_size must be a positive integer \(got str '2'\)"),
        ({"plan": "4 -> L@0.5"}, TypeError, r"plan must be a StagePlan \(got str .*StagePlan.parse"),
        ({"model": object()}, TypeError, r"model must be a Denoiser"),
        ({"tracker": "snapshot"}, TypeError, r"tracker must be an object, not the name 'snapshot'"),
        ({"unmasking": "first_hitting"}, TypeError, r"unmasking must be an object"),
        ({"bos_id": -1}, ValueError, r"bos_id must be a token id >= 0 or None \(got -1\)"),
    ],
)
def test_bad_argument_types_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        run(**kwargs)


class Poisoned:
    """A denoiser whose logits hold ``value`` at vocabulary entry 1 (or everywhere when ``fill``),
    in global-block forwards only (``only_global``) or in every forward."""

    def __init__(self, inner, value: float, *, only_global: bool = False, fill: bool = False):
        self.inner, self.value, self.only_global, self.fill = inner, value, only_global, fill
        self.vocab_size, self.mask_id = inner.vocab_size, inner.mask_id

    def _poison(self, logits):
        out = logits.clone()
        if self.fill:
            out.fill_(self.value)
        else:
            out[..., 1] = self.value
        return out

    def logits(self, tokens, *, block_size=None):
        logits = self.inner.logits(tokens, block_size=block_size)
        return self._poison(logits) if block_size is None or not self.only_global else logits

    def new_cache(self, batch_size, length):
        return self.inner.new_cache(batch_size, length)

    def cached_logits(self, block, *, cache, start):
        logits = self.inner.cached_logits(block, cache=cache, start=start)
        return logits if self.only_global else self._poison(logits)

    def append_to_cache(self, block, *, cache, start):
        self.inner.append_to_cache(block, cache=cache, start=start)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_logits_stop_sampling_naming_stage_and_block(value):
    with pytest.raises(NonFiniteError, match=r"stage 1, block \[0, 4\): 8 NaN/\+inf logit values"):
        run(model=Poisoned(ORACLE, value))  # 2 rows x 4 positions of the first block
    with pytest.raises(NonFiniteError, match=r"stage 2, block \[0, 16\): \d+ NaN/\+inf logit values"):
        run(model=Poisoned(ORACLE, value, only_global=True))


def test_all_minus_inf_positions_are_non_finite_but_one_minus_inf_logit_is_fine():
    with pytest.raises(NonFiniteError, match=r"8 positions whose logits are all -inf"):
        run(model=Poisoned(ORACLE, float("-inf"), fill=True))
    result = run(model=Poisoned(ORACLE, float("-inf")))  # token 1 forbidden: a legal model
    assert not (result.tokens == 1).any() and not (result.tokens == ORACLE.mask_id).any()


def test_nan_in_a_dit_through_the_cache_path():
    from dind.models import build

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0).eval()
    plan = StagePlan.parse("4 -> 16@0.5")
    with pytest.raises(NonFiniteError, match=r"stage 1, block \[0, 4\)"):
        generate(Poisoned(model, float("nan")), plan, length=16, seed=0)
    tracker = CONFIDENCE_TRACKERS.build("snapshot")
    assert generate(
        model, plan, length=16, seed=0, options=GenerateOptions(tracker=tracker)
    ).tokens.shape == (1, 16)


def test_a_prompt_nested_three_deep_is_a_shape_error():
    with pytest.raises(ValueError, match=r"prompt must be \(prompt_length,\) or \(batch, prompt_length\)"):
        run(prompt=[[[1]], [[2]]])


def test_a_model_in_training_mode_with_dropout_is_refused_and_left_as_it_was():
    from dind.models import build

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.1)
    plan = StagePlan.parse("4")
    with pytest.raises(ValueError, match=r"training mode with dropout p=0.1 .*call model.eval\(\)"):
        generate(model.train(), plan, length=8, seed=0)
    assert model.training  # refused, never switched behind the caller's back
    first = generate(model.eval(), plan, length=8, seed=0).tokens
    assert torch.equal(first, generate(model, plan, length=8, seed=0).tokens)
    quiet = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0)
    assert generate(quiet.train(), plan, length=8, seed=0).tokens.shape == (1, 8)  # no dropout: no effect


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": 2**22 + 1}, r"length must be <= 4,194,304 \(got 4194305\)"),
        ({"batch_size": 2**20 + 1}, r"batch_size must be <= 1,048,576 \(got 1048577\)"),
        ({"length": 2**14, "batch_size": 2**13}, r"batch_size x length must be <= 67,108,864 .*8192 x 16384"),
    ],
)
def test_absurd_sizes_are_refused_before_anything_is_allocated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(ORACLE, StagePlan.parse("4"), **{"length": 8, **kwargs})


def test_continuing_or_redrawing_with_a_model_in_training_mode_is_refused_too():
    from dind.models import build
    from dind.sampling import continue_plan, regenerate_rows

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.1).eval()
    draft = generate(model, StagePlan.parse("4"), length=8, seed=0)
    with pytest.raises(ValueError, match=r"training mode with dropout p=0.1"):
        continue_plan(model.train(), StagePlan.parse("4 -> L@0.5"), draft)
    with pytest.raises(ValueError, match=r"training mode with dropout p=0.1"):
        regenerate_rows(model.train(), StagePlan.parse("4"), draft, [0])
