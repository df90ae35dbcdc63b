"""Every registered tokenizer and corpus keeps its protocol's invariant."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dind.data import CORPORA, TOKENIZERS, DocumentSource, Tokenizer

printable = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs",)), max_size=30
)


@pytest.mark.parametrize("name", TOKENIZERS.names())
@settings(max_examples=25)
@given(text=printable)
def test_tokenizer_invariant(name, text):
    tokenizer = TOKENIZERS.build(name)
    assert isinstance(tokenizer, Tokenizer)
    ids = tokenizer.encode(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.mask_id == tokenizer.vocab_size and tokenizer.model_vocab_size == tokenizer.mask_id + 1
    assert tokenizer.decode(ids) == text


def _source(name, tmp_path):
    if name == "text":
        (tmp_path / "a.txt").write_text("one document")
        (tmp_path / "b.jsonl").write_text('{"text": "two"}\n{"text": "three"}\n')
        return CORPORA.build(name, paths=[str(tmp_path)], pattern="*")
    pytest.skip(f"corpus {name!r} needs network access")


@pytest.mark.parametrize("name", CORPORA.names())
def test_corpus_invariant(name, tmp_path):
    source = _source(name, tmp_path)
    assert isinstance(source, DocumentSource)
    first, second = list(source.documents()), list(source.documents())
    assert first == second and len({key for key, _ in first}) == len(first)
    assert source.fingerprint() == source.fingerprint()
