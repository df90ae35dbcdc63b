from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dind.data import (
    ByteTokenizer,
    ChunkBatches,
    ChunkOrder,
    GPT2Tokenizer,
    TextFiles,
    TokenChunks,
    build_token_cache,
)

SHAKESPEARE = Path(__file__).resolve().parents[2] / "data" / "shakespeare"
SMALL = [str(SHAKESPEARE / "phoenix_and_the_turtle.txt"), str(SHAKESPEARE / "passionate_pilgrim.txt")]


@pytest.fixture
def corpus(tmp_path):
    for index, text in enumerate(["alpha beta", "gamma", "delta epsilon zeta", "eta theta", "iota"]):
        (tmp_path / f"doc{index}.txt").write_text(text * 7)
    return TextFiles([str(tmp_path)])


def _stream(cache, split):
    return np.fromfile(cache / f"{split}.bin", dtype=np.uint16).tolist()


def test_cache_holds_every_document_followed_by_eos(corpus, tmp_path):
    tokenizer = ByteTokenizer()
    cache = build_token_cache(corpus, tokenizer, tmp_path / "cache", validation_fraction=0.4, split_seed=0)
    streams = {split: _stream(cache, split) for split in ("train", "validation")}
    assert streams["train"] and streams["validation"]
    expected = sorted(tokenizer.encode(text) + [tokenizer.eos_id] for _, text in corpus.documents())
    found = []
    for stream in streams.values():
        piece = []
        for token in stream:
            piece.append(token)
            if token == tokenizer.eos_id:
                found.append(piece)
                piece = []
        assert piece == []
    assert sorted(found) == expected


def test_cache_is_reused_and_published_atomically(corpus, tmp_path):
    first = build_token_cache(corpus, ByteTokenizer(), tmp_path / "cache", validation_fraction=0.4)
    stamp = (first / "train.bin").stat().st_mtime_ns
    again = build_token_cache(corpus, ByteTokenizer(), tmp_path / "cache", validation_fraction=0.4)
    assert again == first and (first / "train.bin").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temporary left behind
    other = build_token_cache(corpus, ByteTokenizer(), tmp_path / "cache", validation_fraction=0.2)
    assert other != first


@pytest.mark.parametrize("chunk_format, specials", [("plain", 0), ("bos", 1), ("bos_eos", 2)])
def test_chunks_tile_the_stream_without_padding(corpus, tmp_path, chunk_format, specials):
    cache = build_token_cache(corpus, ByteTokenizer(), tmp_path / "cache", validation_fraction=0.0)
    stream = _stream(cache, "train")
    chunks = TokenChunks.open(cache, "train", 16, chunk_format)
    assert len(chunks) == len(stream) // (16 - specials)
    rows = chunks[torch.arange(len(chunks))]
    assert rows.shape == (len(chunks), 16) and rows.dtype == torch.long
    body = rows[:, specials and 1 : 16 - (specials == 2)].flatten().tolist()
    assert body == stream[: len(body)]
    if specials:
        assert (rows[:, 0] == 256).all()
    if specials == 2:
        assert (rows[:, -1] == 256).all()


def test_shakespeare_slice_with_gpt2(tmp_path):
    cache = build_token_cache(TextFiles(SMALL), GPT2Tokenizer(), tmp_path, validation_fraction=0.0)
    chunks = TokenChunks.open(cache, "train", 64, "bos")
    text = GPT2Tokenizer().decode(chunks[torch.tensor([0])][0].tolist())
    assert text.startswith("THE PASSIONATE PILGRIM")


@given(count=st.integers(1, 40), seed=st.integers(0, 100), takes=st.lists(st.integers(0, 25), max_size=8))
def test_order_is_a_permutation_per_epoch_and_resumes_exactly(count, seed, takes):
    order = ChunkOrder(count, seed=seed)
    epoch = order.take(count)
    assert sorted(epoch.tolist()) == list(range(count))
    for n in takes:
        order.take(n)
    state = order.state_dict()
    expected = order.take(count + 3)
    resumed = ChunkOrder(count, seed=seed)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.take(count + 3), expected)


def test_order_depends_on_seed_and_epoch():
    a, b = ChunkOrder(50, seed=0), ChunkOrder(50, seed=1)
    first = a.take(50)
    assert not torch.equal(first, b.take(50))
    assert not torch.equal(first, a.take(50))
    assert torch.equal(ChunkOrder(5, shuffle=False).take(7), torch.tensor([0, 1, 2, 3, 4, 0, 1]))


def test_state_from_another_corpus_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        ChunkOrder(10, seed=0).load_state_dict(ChunkOrder(11, seed=0).state_dict())


def test_batches(corpus, tmp_path):
    cache = build_token_cache(corpus, ByteTokenizer(), tmp_path, validation_fraction=0.0)
    batches = ChunkBatches(TokenChunks.open(cache, "train", 8), seed=0)
    assert batches.next(3).shape == (3, 8)


@pytest.mark.parametrize("count", [0, 10])
def test_a_corpus_shorter_than_one_chunk_says_how_long_it_is(count):
    chunks = TokenChunks(tokens=np.arange(count) % 200, length=32, eos_id=256)
    with pytest.raises(
        ValueError, match=rf"split has {count} tokens, fewer than one chunk needs \(32 tokens"
    ):
        ChunkBatches(chunks)
