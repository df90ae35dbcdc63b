import importlib.util

import pytest

from dind.data import CORPORA, HuggingFaceCorpus


def test_registered_and_lazy():
    assert "huggingface" in CORPORA
    corpus = HuggingFaceCorpus(max_documents=10)  # building one imports nothing
    assert corpus.fingerprint() == HuggingFaceCorpus(max_documents=10).fingerprint()
    assert corpus.fingerprint() != HuggingFaceCorpus(max_documents=11).fingerprint()


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="datasets is installed")
def test_missing_datasets_says_how_to_install():
    with pytest.raises(ImportError, match=r"dind\[hub\]"):
        next(HuggingFaceCorpus().documents())


def test_max_documents_validated():
    with pytest.raises(ValueError, match="max_documents"):
        HuggingFaceCorpus(max_documents=0)
