"""Text data: tokenizers, document sources, and packing into fixed-length training chunks."""

from dind.data.corpus import CORPORA, SPLITS, DocumentSource, Split, TextFiles, split_of
from dind.data.hf import HuggingFaceCorpus
from dind.data.packing import (
    ChunkBatches,
    ChunkFormat,
    ChunkOrder,
    TokenChunks,
    build_token_cache,
    cache_key,
)
from dind.data.tokenizers import TOKENIZERS, ByteTokenizer, GPT2Tokenizer, Tokenizer

__all__ = [
    "CORPORA",
    "SPLITS",
    "TOKENIZERS",
    "ByteTokenizer",
    "ChunkBatches",
    "ChunkFormat",
    "ChunkOrder",
    "DocumentSource",
    "GPT2Tokenizer",
    "HuggingFaceCorpus",
    "Split",
    "TextFiles",
    "TokenChunks",
    "Tokenizer",
    "build_token_cache",
    "cache_key",
    "split_of",
]
