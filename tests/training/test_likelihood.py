"""``dind.training.likelihood``: the NELBO of held-out chunks equals the training loss of the same
noise draws, and the trainer's validation number; its inputs are checked."""

import math

import pytest
import torch

from dind.data import TOKENIZERS
from dind.training import Objective, evaluate, nelbo
from dind.training.block_sizes import FixedBlockSize, parse_block_sizes
from dind.training.likelihood import LikelihoodOptions, likelihood, text_chunks

LENGTH = 32


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    yield


@pytest.fixture
def chunks(micro, random_tokens):
    return random_tokens(micro, 5, LENGTH, torch.Generator().manual_seed(7))


def test_nelbo_equals_the_training_loss_of_the_same_draws(micro, chunks):
    options = LikelihoodOptions(batch_size=2, num_batches=2, seed=3)
    results = likelihood(micro, chunks, [4, LENGTH], options)
    for result, size in zip(results, [4, LENGTH], strict=True):
        objective = Objective(block_sizes=FixedBlockSize(size))
        total, tokens = 0.0, 0
        for index in range(2):
            generator = torch.Generator().manual_seed(3 * 1_000_003 + index)
            draw = objective.draw(
                chunks[2 * index : 2 * index + 2], mask_id=micro.mask_id, low=1e-3, high=1.0,
                generator=generator, block_sizes=size,
            )  # fmt: skip
            schedule = objective.schedule
            loss = nelbo(micro, draw.clean, draw.noisy, draw.masked, draw.t_positions, size, schedule)
            total += float(loss.nll_sum)
            tokens += loss.tokens
        assert result.block_size == size and result.tokens == tokens == 4 * LENGTH
        assert result.sequences == 4 and result.batches == 2
        assert result.nelbo == pytest.approx(total / tokens, rel=1e-5)
        assert result.ppl_bound == pytest.approx(math.exp(result.nelbo))
        assert result.stderr > 0 and result.masked > 0


def test_nelbo_reproduces_the_trainers_validation(micro, chunks):
    mix = Objective(block_sizes=parse_block_sizes(f"bimodal:4,{LENGTH},0.25"))
    trainer = evaluate(micro, mix, chunks, rows=2, batches=2, seed=5)
    options = LikelihoodOptions(batch_size=2, num_batches=2, seed=5)
    for result in likelihood(micro, chunks, [4, LENGTH], options):
        assert result.nelbo == pytest.approx(trainer[f"val_nelbo_block{result.block_size}"], rel=1e-5)


def test_default_scores_every_chunk_with_a_short_last_batch(micro, chunks):
    (every,) = likelihood(micro, chunks, [8], LikelihoodOptions(batch_size=2))
    assert every.batches == 3 and every.sequences == 5 and every.tokens == 5 * LENGTH
    (same,) = likelihood(micro, chunks, [8], LikelihoodOptions(batch_size=2, num_batches=3))
    assert same.nelbo == every.nelbo  # deterministic: the same seed gives the same number
    (single,) = likelihood(micro, chunks[:1], [8], LikelihoodOptions(batch_size=2))
    assert single.sequences == 1 and single.stderr is None  # JSON has no NaN


@pytest.mark.parametrize(
    ("block_sizes", "options", "message"),
    [
        ([5], LikelihoodOptions(), r"block_sizes must divide the length \(got 5, length 32\)"),
        ([64], LikelihoodOptions(), r"block_sizes must divide the length \(got 64, length 32\)"),
        ([4, 4], LikelihoodOptions(), r"block_sizes must not repeat a size \(got \[4, 4\]\)"),
        ([], LikelihoodOptions(), r"block_sizes must name at least one block size"),
        ([4], LikelihoodOptions(batch_size=2, num_batches=4), r"num_batches must be <= .* \(got 4; 5 chunks"),
    ],
)
def test_bad_inputs_name_the_parameter(micro, chunks, block_sizes, options, message):
    with pytest.raises(ValueError, match=message):
        likelihood(micro, chunks, block_sizes, options)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, r"batch_size must be a positive integer \(got 0\)"),
        ("num_batches", 0, r"num_batches must be a positive integer or None \(got 0\)"),
        ("seed", -1, r"seed must be an integer in \[0, 2\*\*32\) \(got -1\)"),
    ],
)
def test_bad_options_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        LikelihoodOptions(**{field: value})


def test_empty_data_is_an_error(micro):
    with pytest.raises(ValueError, match=r"chunks must hold at least one complete chunk"):
        likelihood(micro, torch.zeros(0, LENGTH, dtype=torch.long), [4])


def test_text_chunks_pack_as_the_trainer(tmp_path):
    (tmp_path / "a.txt").write_text("abcdef")
    (tmp_path / "b.txt").write_text("xyz")
    tokenizer = TOKENIZERS.build("bytes")
    chunks = text_chunks([tmp_path], tokenizer, 4)  # stream: a b c d e f EOS x y z EOS; stride 3
    assert len(chunks) == 3
    assert chunks[torch.arange(3)].tolist() == [
        [256, 97, 98, 99],
        [256, 100, 101, 102],
        [256, 256, 120, 121],
    ]
