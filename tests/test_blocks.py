import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.blocks import PARTITIONERS, FixedPartitioner, block_ids


@st.composite
def partition_case(draw):
    block_size = draw(st.integers(1, 64))
    alignment = draw(st.sampled_from(["absolute", "prompt"]))
    length = draw(st.integers(1, 512))
    prompt = draw(st.integers(0, length))
    return FixedPartitioner(block_size, alignment=alignment, ragged="short_last"), length, prompt


@given(partition_case())
def test_spans_tile_the_sequence(case):
    partitioner, length, prompt = case
    spans = partitioner.spans(length, prompt_length=prompt)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end == start
    assert all(end > start for start, end in spans)
    ids = block_ids(partitioner, length, prompt_length=prompt)
    assert ids.shape == (length,) and ids[-1].item() == len(spans) - 1


@given(partition_case())
def test_blocks_are_at_most_block_size(case):
    partitioner, length, prompt = case
    spans = partitioner.spans(length, prompt_length=prompt)
    body = spans[1:] if partitioner.alignment == "prompt" and prompt > 0 else spans
    assert all(end - start <= partitioner.block_size for start, end in body)
    if partitioner.alignment == "absolute":
        assert all(start % partitioner.block_size == 0 for start, _ in spans)


@pytest.mark.parametrize("name", PARTITIONERS.names())
def test_registered_partitioners_tile(name):
    partitioner = PARTITIONERS.build(name, block_size=4)
    assert partitioner.spans(16) == ((0, 4), (4, 8), (8, 12), (12, 16))


def test_non_dividing_block_size_is_an_error_by_default():
    with pytest.raises(ValueError, match=r"block_size must divide the length to tile \(got block_size=5"):
        FixedPartitioner(5).spans(16)


def test_short_last_rule():
    assert FixedPartitioner(5, ragged="short_last").spans(12) == ((0, 5), (5, 10), (10, 12))


def test_prompt_alignment():
    assert FixedPartitioner(4, alignment="prompt").spans(11, prompt_length=3) == ((0, 3), (3, 7), (7, 11))


@pytest.mark.parametrize("bad", [0, -4, 2.5, True])
def test_invalid_block_size(bad):
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        FixedPartitioner(bad)
