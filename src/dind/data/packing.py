"""Packing documents into fixed-length training chunks.

Storage: a pre-tokenised cache built once per (source, tokenizer, split rule). The build streams
documents one at a time, appends ``tokens + [EOS]`` to one flat uint16/uint32 file per split, and
publishes the directory atomically (tmp dir + rename); readers memory-map the files. So a corpus
larger than RAM works (it only needs disk), and reading is random access, which makes shuffling
and exact resumption trivial: a chunk is a slice of the flat stream (no padding), the order of an
epoch is a seeded permutation of chunk indices, and the data position is (epoch, cursor).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from torch import Tensor

from dind.data.corpus import SPLITS, DocumentSource, Split, split_of
from dind.data.tokenizers import Tokenizer

CACHE_VERSION = 1
ChunkFormat = Literal["plain", "bos", "bos_eos"]
_SPECIAL_PER_CHUNK = {"plain": 0, "bos": 1, "bos_eos": 2}


def _token_dtype(tokenizer: Tokenizer) -> np.dtype:
    return np.dtype(np.uint16) if tokenizer.model_vocab_size <= 2**16 else np.dtype(np.uint32)


def cache_key(
    source: DocumentSource, tokenizer: Tokenizer, *, validation_fraction: float, split_seed: int
) -> str:
    import hashlib

    text = repr((CACHE_VERSION, source.fingerprint(), repr(tokenizer), validation_fraction, split_seed))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def build_token_cache(
    source: DocumentSource,
    tokenizer: Tokenizer,
    directory: str | os.PathLike[str],
    *,
    validation_fraction: float,
    split_seed: int = 0,
    documents_per_batch: int = 64,
) -> Path:
    """Tokenise ``source`` into ``directory/<key>/{train,validation}.bin`` (+ meta.json) unless a
    complete cache with the same key exists; returns that directory. Safe against interruption:
    the directory appears only once complete."""
    key = cache_key(source, tokenizer, validation_fraction=validation_fraction, split_seed=split_seed)
    final = Path(directory).expanduser() / key
    if (final / "meta.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=final.parent))
    try:
        meta = _write_splits(source, tokenizer, tmp, validation_fraction, split_seed, documents_per_batch)
        meta.update(key=key, tokenizer=repr(tokenizer), version=CACHE_VERSION)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            tmp.rename(final)
        except OSError:  # another process published the same cache first
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_splits(
    source: DocumentSource, tokenizer: Tokenizer, tmp: Path, fraction: float, seed: int, per_batch: int
) -> dict[str, Any]:
    dtype = _token_dtype(tokenizer)
    handles = {split: (tmp / f"{split}.bin").open("wb") for split in SPLITS}
    tokens = dict.fromkeys(SPLITS, 0)
    documents = dict.fromkeys(SPLITS, 0)
    try:
        for batch in _batched(source.documents(), per_batch):
            encoded = tokenizer.encode_batch([text for _, text in batch])  # type: ignore[attr-defined]
            for (key, _), ids in zip(batch, encoded, strict=False):
                split = split_of(key, validation_fraction=fraction, seed=seed)
                np.asarray([*ids, tokenizer.eos_id], dtype=dtype).tofile(handles[split])
                tokens[split] += len(ids) + 1
                documents[split] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return {"dtype": dtype.name, "tokens": tokens, "documents": documents, "eos_id": tokenizer.eos_id}


def _batched(items: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@attrs.frozen
class TokenChunks:
    """Random access to the length-``length`` chunks of one split of a token cache.

    ``chunk_format``: "plain" cuts the stream into ``length`` tokens; "bos" starts every chunk with
    EOS-as-BOS (GPT-2's convention, BOS = EOS) then ``length - 1`` stream tokens; "bos_eos" (MDLM's
    wrap) also ends it with EOS. The tail shorter than a chunk is dropped.
    """

    tokens: np.ndarray
    length: int
    eos_id: int
    chunk_format: ChunkFormat = "plain"

    @classmethod
    def open(
        cls, cache: str | os.PathLike[str], split: Split, length: int, chunk_format: ChunkFormat = "plain"
    ):
        meta = json.loads((Path(cache) / "meta.json").read_text())
        path = Path(cache) / f"{split}.bin"
        count = meta["tokens"][split]
        tokens = np.memmap(path, dtype=meta["dtype"], mode="r") if count else np.zeros(0, meta["dtype"])
        return cls(tokens=tokens, length=length, eos_id=meta["eos_id"], chunk_format=chunk_format)

    @property
    def stride(self) -> int:
        stride = self.length - _SPECIAL_PER_CHUNK[self.chunk_format]
        if stride < 1:
            raise ValueError(
                f"length must exceed the special tokens of {self.chunk_format!r} (got {self.length})"
            )
        return stride

    def __len__(self) -> int:
        return len(self.tokens) // self.stride

    def __getitem__(self, indices: Tensor) -> Tensor:
        """(n,) chunk indices -> (n, length) long tokens."""
        starts = indices.numpy().astype(np.int64) * self.stride
        rows = np.stack([self.tokens[s : s + self.stride] for s in starts]) if len(starts) else None
        body = (
            torch.from_numpy(rows.astype(np.int64))
            if rows is not None
            else torch.zeros(0, self.stride).long()
        )
        eos = torch.full((len(body), 1), self.eos_id, dtype=torch.long)
        parts = {"plain": [body], "bos": [eos, body], "bos_eos": [eos, body, eos]}[self.chunk_format]
        return torch.cat(parts, dim=1)


class ChunkOrder:
    """The order chunks are read in: epoch ``e`` is a permutation of ``range(count)`` drawn from a
    generator seeded with (seed, e), or the identity when ``shuffle`` is off. The position
    (epoch, cursor) is the whole state, so ``state_dict`` / ``load_state_dict`` resume exactly."""

    def __init__(self, count: int, *, seed: int = 0, shuffle: bool = True):
        if count < 1:
            raise ValueError(f"count must be >= 1: the split has no complete chunk (got {count})")
        self.count, self.seed, self.shuffle = count, seed, shuffle
        self.epoch, self.cursor = 0, 0
        self._permutation: tuple[int, Tensor] | None = None

    def _epoch_order(self) -> Tensor:
        if self._permutation is None or self._permutation[0] != self.epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
                order = torch.randperm(self.count, generator=generator)
            else:
                order = torch.arange(self.count)
            self._permutation = (self.epoch, order)
        return self._permutation[1]

    def take(self, n: int) -> Tensor:
        """The next ``n`` chunk indices, (n,) long, crossing into the next epoch when needed."""
        parts = []
        while n > 0:
            order = self._epoch_order()
            piece = order[self.cursor : self.cursor + n]
            parts.append(piece)
            n -= len(piece)
            self.cursor += len(piece)
            if self.cursor == self.count:
                self.epoch, self.cursor = self.epoch + 1, 0
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor, "count": self.count, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["count"] != self.count or state["seed"] != self.seed:
            raise ValueError(
                "data state does not match this corpus (got count/seed "
                f"{state['count']}/{state['seed']}, corpus has {self.count}/{self.seed})"
            )
        self.epoch, self.cursor = state["epoch"], state["cursor"]


class ChunkBatches:
    """Batches of chunks in ``ChunkOrder``: ``next(batch_size)`` -> (batch, length) long tokens."""

    def __init__(self, chunks: TokenChunks, *, seed: int = 0, shuffle: bool = True):
        self.chunks = chunks
        if len(chunks) == 0:  # say what is there and what one chunk needs, not "count must be >= 1"
            raise ValueError(
                f"the corpus split has {len(chunks.tokens)} tokens, fewer than one chunk needs "
                f"({chunks.stride} tokens for length {chunks.length}, format {chunks.chunk_format!r}); use "
                "more text, a shorter data.length, or a smaller data.validation_fraction"
            )
        self.order = ChunkOrder(len(chunks), seed=seed, shuffle=shuffle)

    def next(self, batch_size: int) -> Tensor:
        return self.chunks[self.order.take(batch_size)]

    def state_dict(self) -> dict[str, int]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.order.load_state_dict(state)
