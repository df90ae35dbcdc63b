import pytest
from hypothesis import given
from hypothesis import strategies as st

from dind.data import TOKENIZERS, ByteTokenizer, GPT2Tokenizer


def test_gpt2_matches_the_reference_ids():
    tokenizer = GPT2Tokenizer()
    assert tokenizer.encode("Hello world") == [15496, 995]
    assert (tokenizer.eos_id, tokenizer.vocab_size, tokenizer.mask_id, tokenizer.model_vocab_size) == (
        50256,
        50257,
        50257,
        50258,
    )


def test_gpt2_literal_end_of_text_is_plain_text():
    # documents are separated by the corpus, never by text that happens to spell the marker
    assert 50256 not in GPT2Tokenizer().encode("a <|endoftext|> b")


def test_bytes_layout():
    tokenizer = ByteTokenizer()
    assert tokenizer.encode("hé") == [104, 195, 169]
    assert (tokenizer.eos_id, tokenizer.vocab_size, tokenizer.mask_id, tokenizer.model_vocab_size) == (
        256,
        257,
        257,
        258,
    )


@pytest.mark.parametrize("name", ["gpt2", "bytes"])
def test_decode_drops_eos_and_mask(name):
    tokenizer = TOKENIZERS.build(name)
    ids = tokenizer.encode("to be or not")
    noisy = [tokenizer.mask_id, *ids[:2], tokenizer.eos_id, tokenizer.mask_id, *ids[2:], tokenizer.eos_id]
    assert tokenizer.decode(noisy) == "to be or not"


def test_gpt2_hf_wrapper_agrees():
    hf = GPT2Tokenizer().hf_tokenizer()
    assert hf("Hello world").input_ids == [15496, 995]


@given(text=st.text(max_size=40))
def test_bytes_roundtrip(text):
    tokenizer = ByteTokenizer()
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_for_vocabulary_finds_bytes_and_gpt2_and_names_a_misfit():
    import pytest

    from dind.data.tokenizers import tokenizer_for_vocabulary

    assert tokenizer_for_vocabulary(258, 257) == "bytes"
    assert tokenizer_for_vocabulary(50258, 50257) == "gpt2"
    with pytest.raises(LookupError, match="model vocabulary of 1000 with mask_id 999"):
        tokenizer_for_vocabulary(1000, 999)
