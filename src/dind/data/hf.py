"""Hugging Face ``datasets`` corpora (OpenWebText for the 110M fine-tune).

Optional: ``datasets`` is imported only when documents are read, and a missing package or an
unreachable hub raises an error that says what to do. Streaming mode reads one record at a time,
so nothing is downloaded in full before the token cache (dind.data.packing) is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import attrs

from dind.data.corpus import CORPORA
from dind.validation import optional_positive_int


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            "corpus 'huggingface' needs the 'datasets' package: pip install 'dind[hub]' "
            "(or use corpus 'text' with local files)"
        ) from error
    return datasets


@CORPORA.register("huggingface")
@attrs.frozen
class HuggingFaceCorpus:
    """Documents of a hub dataset, keyed by their index in ``split`` (the dind train/validation split
    is then made by key, as for local files; OpenWebText ships a single "train" split).

    ``max_documents`` caps the number read (smoke tests, small fine-tunes).
    """

    name: str = "Skylion007/openwebtext"
    config: str | None = None
    split: str = "train"
    text_field: str = "text"
    streaming: bool = True
    max_documents: int | None = attrs.field(default=None, validator=optional_positive_int)
    revision: str | None = None

    def _load(self) -> Any:
        datasets = _import_datasets()
        try:
            return datasets.load_dataset(
                self.name, self.config, split=self.split, streaming=self.streaming, revision=self.revision
            )
        except Exception as error:  # the hub raises many types; all mean "not reachable here"
            raise RuntimeError(
                f"could not load dataset {self.name!r} (config {self.config!r}, split {self.split!r}): "
                f"{error}. Check network access to the Hugging Face hub or set HF_DATASETS_OFFLINE=1 "
                "with a local copy in the datasets cache."
            ) from error

    def documents(self) -> Iterator[tuple[str, str]]:
        for index, record in enumerate(self._load()):
            if self.max_documents is not None and index >= self.max_documents:
                return
            yield f"{self.name}/{self.split}:{index}", record[self.text_field]

    def fingerprint(self) -> str:
        text = repr(attrs.astuple(self))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
