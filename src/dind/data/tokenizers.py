"""Tokenizers: text <-> token ids, plus the ids the diffusion model adds (EOS, MASK).

Every tokenizer keeps the same layout of its id space: ``0 .. eos_id`` are the tokenizer's own
ids (EOS included), and ``mask_id = vocab_size`` is the one id the model adds, so a model over
this tokenizer has ``model_vocab_size = vocab_size + 1`` outputs (BD3-LM: GPT-2's 50257 + MASK).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import attrs

from dind.registry import Registry


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids. Invariants: ``0 <= id < vocab_size`` for every id ``encode`` returns;
    ``mask_id == vocab_size``; ``decode`` drops EOS and MASK ids (a partly masked sample decodes
    to its revealed text); ``decode(encode(text)) == text`` for well-formed text."""

    eos_id: int
    vocab_size: int  # the tokenizer's ids, EOS included, MASK excluded
    mask_id: int

    @property
    def model_vocab_size(self) -> int:
        """Outputs of a denoiser over this tokenizer: its ids plus MASK (``mask_id + 1``)."""
        ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


TOKENIZERS: Registry[Tokenizer] = Registry("tokenizers", entry_point_group="dind.tokenizers")


def _plain_ids(ids: Iterable[int], *, eos_id: int, mask_id: int) -> list[int]:
    # tolist() on tensors/arrays is the caller's job; ints compare fast here
    return [i for i in (int(i) for i in ids) if i != eos_id and i != mask_id]


@functools.lru_cache(maxsize=1)
def _gpt2_backend() -> Any:
    from tokenizers import ByteLevelBPETokenizer

    assets = resources.files("dind") / "assets" / "gpt2"
    with (
        resources.as_file(assets / "encoder.json") as vocab,
        resources.as_file(assets / "vocab.bpe") as merges,
    ):
        return ByteLevelBPETokenizer(str(vocab), str(merges))


@TOKENIZERS.register("gpt2")
@attrs.frozen
class GPT2Tokenizer:
    """GPT-2's byte-level BPE from the files shipped in ``dind/assets/gpt2`` (no hub access).

    A literal "<|endoftext|>" in the text is encoded as ordinary text: documents are separated
    by the corpus, which appends ``eos_id`` itself.
    """

    eos_id: int = attrs.field(default=50256, init=False)
    vocab_size: int = attrs.field(default=50257, init=False)
    mask_id: int = attrs.field(default=50257, init=False)

    @property
    def model_vocab_size(self) -> int:
        return self.mask_id + 1

    def encode(self, text: str) -> list[int]:
        return _gpt2_backend().encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in _gpt2_backend().encode_batch(list(texts))]

    def decode(self, ids: Iterable[int]) -> str:
        return _gpt2_backend().decode(_plain_ids(ids, eos_id=self.eos_id, mask_id=self.mask_id))

    def hf_tokenizer(self) -> Any:
        """The same tokenizer as a ``transformers.GPT2TokenizerFast`` (imports transformers)."""
        from transformers import GPT2TokenizerFast

        return GPT2TokenizerFast(tokenizer_object=_gpt2_backend()._tokenizer)


@TOKENIZERS.register("bytes")
@attrs.frozen
class ByteTokenizer:
    """UTF-8 bytes: ids 0..255, EOS 256, MASK 257 (model vocabulary 258). Tiny and dependency-free."""

    eos_id: int = attrs.field(default=256, init=False)
    vocab_size: int = attrs.field(default=257, init=False)
    mask_id: int = attrs.field(default=257, init=False)

    @property
    def model_vocab_size(self) -> int:
        return self.mask_id + 1

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        kept = _plain_ids(ids, eos_id=self.eos_id, mask_id=self.mask_id)
        # out-of-range ids come from an untrained model's samples; show them as U+FFFD
        return bytes(i if 0 <= i < 256 else 0xFF for i in kept).decode("utf-8", errors="replace")


def tokenizer_for_vocabulary(model_vocab_size: int, mask_id: int) -> str:
    """The name of the registered tokenizer whose model vocabulary and MASK id fit a model's
    (``bytes`` for 258 outputs, ``gpt2`` for BD3-LM's 50258); a LookupError names the sizes."""
    fitting = [
        name
        for name in TOKENIZERS.names()
        if (tokenizer := TOKENIZERS.build(name)).model_vocab_size == model_vocab_size
        and tokenizer.mask_id == mask_id
    ]
    if not fitting:
        raise LookupError(
            f"no registered tokenizer fits a model vocabulary of {model_vocab_size} with mask_id {mask_id}; "
            "pass --tokenizer"
        )
    return fitting[0]


def tokenizer_for_model(model: Any, name: str | None = None) -> tuple[str, Any]:
    """(name, tokenizer) for a model: the named tokenizer, which must share the model's MASK id, or
    (``name`` None) the registered tokenizer that fits the model's vocabulary."""
    if name is None:
        name = tokenizer_for_vocabulary(model.vocab_size, model.mask_id)
    tokenizer = TOKENIZERS.build(name)
    if model.mask_id != tokenizer.mask_id:
        raise ValueError(
            f"tokenizer must match the model's vocabulary (got {name!r} with mask_id {tokenizer.mask_id}, "
            f"model mask_id {model.mask_id})"
        )
    return name, tokenizer
