"""Block-size distributions P_B: support, probabilities, text form, per-batch and per-row draws."""

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from dind.training import Objective
from dind.training.block_sizes import (
    BLOCK_SIZE_DISTRIBUTIONS,
    BlockSizeDistribution,
    check_divides,
    draw_categorical,
    parse_block_sizes,
)

# text examples for the shipped names; any other registered distribution (a plugin) is tested
# through its default construction, so it must build without arguments or add an example here
EXAMPLES = {
    "fixed": "fixed:4",
    "bimodal": "bimodal:4,1024,0.1",
    "uniform": "uniform:4,16,64,256,1024",
    "categorical": "categorical:4=0.7,64=0.2,1024=0.1",
}
NAMES = BLOCK_SIZE_DISTRIBUTIONS.names()


def example_text(name: str) -> str:
    return EXAMPLES[name] if name in EXAMPLES else str(BLOCK_SIZE_DISTRIBUTIONS.build(name))


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_distribution_has_an_example_text(name):
    assert parse_block_sizes(example_text(name)).support()


@pytest.mark.parametrize("name", NAMES)
def test_protocol_and_probabilities(name):
    dist = parse_block_sizes(example_text(name))
    assert isinstance(dist, BlockSizeDistribution)
    support, probs = dist.support(), dist.probabilities()
    assert len(support) == len(probs) == len(set(support))
    assert all(isinstance(size, int) and size >= 1 for size in support)
    assert all(p >= 0 for p in probs) and math.isclose(sum(probs), 1.0, abs_tol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_text_form_round_trips(name):
    dist = parse_block_sizes(example_text(name))
    assert str(dist) == example_text(name)
    assert parse_block_sizes(str(dist)) == dist


@pytest.mark.parametrize("name", NAMES)
def test_draws_stay_in_the_support_and_are_seeded(name):
    dist = parse_block_sizes(example_text(name))
    draw = dist.sample(64, generator=torch.Generator().manual_seed(0))
    assert draw.shape == (64,) and draw.dtype == torch.long
    assert set(draw.tolist()) <= set(dist.support())
    again = dist.sample(64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw, again)


@pytest.mark.parametrize("name", NAMES)
def test_empirical_frequencies_match_probabilities(name):
    # n draws, each size's count within 4 binomial standard deviations of n * p (fixed seed)
    dist = parse_block_sizes(example_text(name))
    n = 20000
    draw = dist.sample(n, generator=torch.Generator().manual_seed(7))
    for size, p in zip(dist.support(), dist.probabilities(), strict=True):
        count = int((draw == size).sum())
        assert abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (size, count, n * p)


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_degenerate_bimodal_draws_one_size(probability):
    dist = BLOCK_SIZE_DISTRIBUTIONS.build("bimodal", draft=4, global_size=64, global_probability=probability)
    draw = dist.sample(200, generator=torch.Generator().manual_seed(0))
    assert set(draw.tolist()) == {64 if probability else 4}


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_sample_count_must_be_positive(bad):
    with pytest.raises(ValueError, match=r"n must be a positive integer \(got"):
        parse_block_sizes("fixed:4").sample(bad)


# ---- per-batch and per-row draws (the objective's block_size_draw) ----


def _objective(mode: str) -> Objective:
    return Objective(block_sizes=parse_block_sizes("bimodal:4,32,0.5"), block_size_draw=mode)


@given(seed=st.integers(0, 2**31), batch=st.integers(1, 16))
def test_per_batch_draw_gives_every_row_one_size(seed, batch):
    sizes = _objective("batch").draw_block_sizes(batch, generator=torch.Generator().manual_seed(seed))
    assert sizes.shape == (batch,) and sizes.dtype == torch.long
    assert sizes[0].item() in (4, 32) and (sizes == sizes[0]).all()


def test_per_sample_draw_gives_each_row_its_own_size(generator):
    objective = _objective("sample")
    sizes = objective.draw_block_sizes(4096, generator=generator)
    assert set(sizes.tolist()) == {4, 32}
    # each row is an independent draw: half of them are 32 (4-sigma binomial bound)
    assert abs(int((sizes == 32).sum()) - 2048) <= 4 * math.sqrt(4096 * 0.25)
    # and 4096 per-batch draws would agree among themselves
    assert len(set(_objective("batch").draw_block_sizes(4096, generator=generator).tolist())) == 1


def test_per_batch_draws_vary_across_batches():
    generator = torch.Generator().manual_seed(0)
    firsts = {int(_objective("batch").draw_block_sizes(8, generator=generator)[0]) for _ in range(64)}
    assert firsts == {4, 32}


# ---- divisibility and parsing errors ----


@pytest.mark.parametrize("name", NAMES)
def test_check_divides(name):
    dist = parse_block_sizes(example_text(name))
    check_divides(dist, 1024)  # every example's sizes divide 1024
    with pytest.raises(ValueError, match=r"every block size must divide the sequence length \(got sizes \["):
        check_divides(dist, 1022)
    with pytest.raises(ValueError, match=r"\(got sizes \[4.*\], length 2\)"):
        check_divides(dist, 2)  # a size longer than the sequence is rejected too


def test_check_divides_names_every_bad_size():
    with pytest.raises(ValueError, match=r"\(got sizes \[12, 64\], length 32\)"):
        check_divides(parse_block_sizes("uniform:4,12,64"), 32)


@given(
    sizes=st.lists(st.integers(1, 4096), min_size=1, max_size=6, unique=True),
    digits=st.lists(st.integers(1, 99), min_size=6, max_size=6),
    probability=st.floats(0.0, 1.0),
)
@example(sizes=[4, 64], digits=[33, 1, 1, 1, 1, 1], probability=1 / 3)
def test_generated_distributions_round_trip(sizes, digits, probability):
    uniform = BLOCK_SIZE_DISTRIBUTIONS.build("uniform", sizes=tuple(sizes))
    assert parse_block_sizes(str(uniform)) == uniform
    # weights with a short decimal form (as written in configs), normalised by the last one
    raw = [d / 100 for d in digits[: len(sizes)]]
    weights = [round(w / sum(raw), 4) for w in raw]
    weights[-1] = round(1 - sum(weights[:-1]), 4)
    if weights[-1] > 0:
        categorical = BLOCK_SIZE_DISTRIBUTIONS.build("categorical", sizes=tuple(sizes), weights=weights)
        assert parse_block_sizes(str(categorical)) == categorical
    if len(sizes) >= 2:
        draft, global_size = sorted(sizes[:2])
        bimodal = BLOCK_SIZE_DISTRIBUTIONS.build(
            "bimodal", draft=draft, global_size=global_size, global_probability=probability
        )
        assert parse_block_sizes(str(bimodal)) == bimodal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fixed:0", r"size must be a positive integer \(got 0\)"),
        ("bimodal:64,4", r"global_size must be > draft \(got global_size=4, draft=64\)"),
        ("bimodal:4,64,1.5", r"global_probability must be in \[0, 1\] \(got 1.5\)"),
        ("uniform:", r"sizes must not be empty"),
        ("uniform:4,4", r"sizes must not repeat a size \(got \(4, 4\)\)"),
        ("uniform:4,-2", r"sizes must be a positive integer \(got -2\)"),
        ("categorical:4=0.5,8=0.6", r"weights must sum to 1 \(got sum 1.1"),
        ("categorical:4=1.0,8=0", r"weights must be > 0"),
        ("fixed:four", r"invalid literal"),
    ],
)
def test_bad_text_names_the_parameter(text, message):
    with pytest.raises(ValueError, match=rf"cannot parse block-size distribution '{text}': {message}"):
        parse_block_sizes(text)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown block_size_distributions 'trimodal'; known names: bimodal"):
        parse_block_sizes("trimodal:4,8,16")


# ---- draw_categorical: the draw every shipped law uses ----

# recorded with the draw the shipped laws had before draw_categorical (a private helper doing the
# same multinomial): 16 sizes, then 1, then the generator's next integer (its state after)
PINNED = {
    "fixed:4": ([4] * 16, [4], 482366757),
    "bimodal:4,1024,0.1": ([4] * 9 + [1024] + [4] * 6, [4], 114212774),
    "uniform:4,16,64,256,1024": (
        [16, 4, 64, 64, 16, 16, 4, 16, 16, 1024, 1024, 4, 256, 256, 16, 16],
        [16],
        106445033,
    ),
    "categorical:4=0.7,64=0.2,1024=0.1": ([4] * 9 + [1024, 64, 4, 64, 4, 4, 4], [4], 441937603),
}


@pytest.mark.parametrize("text", PINNED)
def test_shipped_draws_are_bit_identical_to_the_recorded_ones(text):
    dist = parse_block_sizes(text)
    generator = torch.Generator().manual_seed(1234)
    many, one = dist.sample(16, generator=generator).tolist(), dist.sample(1, generator=generator).tolist()
    after = int(torch.randint(0, 10**9, (1,), generator=generator))
    assert (many, one, after) == PINNED[text]
    again = draw_categorical(
        dist.support(), dist.probabilities(), 16, generator=torch.Generator().manual_seed(1234)
    )
    assert again.tolist() == PINNED[text][0]


@given(
    weights=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6),
    n=st.integers(1, 50),
    seed=st.integers(0, 2**31),
)
def test_draw_categorical_is_one_float64_multinomial(weights, n, seed):
    sizes = [4 * 2**k for k in range(len(weights))]
    probabilities = [w / sum(weights) for w in weights]
    draw = draw_categorical(sizes, probabilities, n, generator=torch.Generator().manual_seed(seed))
    index = torch.multinomial(
        torch.tensor(probabilities, dtype=torch.float64),
        n,
        replacement=True,
        generator=torch.Generator().manual_seed(seed),
    )
    assert draw.dtype == torch.long and torch.equal(draw, torch.tensor(sizes)[index])


@pytest.mark.parametrize(
    "sizes, probabilities, n, message",
    [
        ((4, 8), (1.0,), 3, r"sizes and probabilities must be non-empty and of one length \(got 2 sizes, 1"),
        ((), (), 3, r"must be non-empty"),
        ((4, 8), (0.5, -0.5), 3, r"probabilities must be finite, >= 0 and not all 0 \(got \(0.5, -0.5\)\)"),
        ((4,), (float("nan"),), 3, r"probabilities must be finite"),
        ((4,), (1.0,), 0, r"n must be a positive integer \(got 0\)"),
    ],
)
def test_draw_categorical_names_bad_inputs(sizes, probabilities, n, message):
    with pytest.raises(ValueError, match=message):
        draw_categorical(sizes, probabilities, n)


def test_a_law_written_with_draw_categorical_needs_no_sample_of_its_own():
    class Thirds:
        def support(self):
            return (2, 4, 8)

        def probabilities(self):
            return (1 / 3, 1 / 3, 1 / 3)

        def sample(self, n, *, generator=None):
            return draw_categorical(self.support(), self.probabilities(), n, generator=generator)

    assert isinstance(Thirds(), BlockSizeDistribution)
    assert set(Thirds().sample(300, generator=torch.Generator().manual_seed(0)).tolist()) == {2, 4, 8}
