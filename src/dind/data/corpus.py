"""Document sources: where the training text comes from, one document at a time.

A ``DocumentSource`` yields ``(key, text)`` pairs lazily, so a corpus larger than memory streams
through (one document in memory at a time). Keys are stable across machines (paths relative to
the root they were found under, plus a line number for JSON lines): the train/validation split is
a pure function of the key (``split_of``), so it never depends on file order or on how many
documents there are, and it is the same on every rank and every run.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import attrs

from dind.errors import DataFormatError
from dind.registry import Registry

Split = Literal["train", "validation"]
SPLITS: tuple[Split, ...] = ("train", "validation")


@runtime_checkable
class DocumentSource(Protocol):
    """Invariant: ``documents()`` yields the same (key, text) pairs in the same order on every call,
    keys are unique, and ``fingerprint()`` changes whenever that sequence may have changed."""

    def documents(self) -> Iterator[tuple[str, str]]: ...

    def fingerprint(self) -> str: ...


CORPORA: Registry[DocumentSource] = Registry("corpora", entry_point_group="dind.corpora")


def split_of(key: str, *, validation_fraction: float, seed: int = 0) -> Split:
    """The split a document belongs to: a seeded hash of its key, compared with the fraction."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1) (got {validation_fraction})")
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2.0**64
    return "validation" if unit < validation_fraction else "train"


def _to_path_tuple(paths: object) -> tuple[str, ...]:
    if isinstance(paths, (str, Path)):
        return (str(paths),)
    return tuple(str(p) for p in paths)  # type: ignore[union-attr]


def _nonempty(instance: object, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must name at least one file or directory (got {value!r})")


@CORPORA.register("text")
@attrs.frozen
class TextFiles:
    """Plain-text and JSON-lines files, given as files or directories (searched recursively).

    A ``.txt`` (any non-``.jsonl``) file is one document, or several when ``document_delimiter`` is
    set (e.g. "\\n\\n\\n"); every line of a ``.jsonl`` file is one document (its ``text_field``).
    Files are visited in sorted order; JSON lines are read one line at a time. ``exclude`` holds
    glob patterns matched against the keys (e.g. ``["julius_caesar.txt"]``) to leave files out, so
    that a held-out split (such as the offline judge's plays) is stated in the config.
    """

    paths: tuple[str, ...] = attrs.field(converter=_to_path_tuple, validator=_nonempty)
    pattern: str = "*.txt"
    document_delimiter: str | None = None
    text_field: str = "text"
    encoding: str = "utf-8"
    exclude: tuple[str, ...] = attrs.field(default=(), converter=_to_path_tuple)

    def files(self) -> list[tuple[str, Path]]:
        """(key, path) for every file, sorted by key; keys are relative to the path given."""
        found: dict[str, Path] = {}
        for given in self.paths:
            root = Path(given).expanduser()
            if root.is_dir():
                matches = [
                    (p.relative_to(root).as_posix(), p) for p in root.rglob(self.pattern) if p.is_file()
                ]
            elif root.is_file():
                matches = [(root.name, root)]
            else:
                raise FileNotFoundError(f"paths: no such file or directory (got {given!r})")
            for key, path in matches:
                if any(fnmatch.fnmatchcase(key, pattern) for pattern in self.exclude):
                    continue
                if key in found and found[key] != path:
                    raise ValueError(f"paths: two files share the key {key!r} ({found[key]}, {path})")
                found[key] = path
        if not found:
            raise ValueError(
                f"paths: no file matches pattern {self.pattern!r} outside exclude {list(self.exclude)!r}"
                f" (got {self.paths!r})"
            )
        return sorted(found.items())

    def documents(self) -> Iterator[tuple[str, str]]:
        for key, path in self.files():
            if path.suffix == ".jsonl":
                yield from self._json_lines(key, path)
                continue
            try:
                text = path.read_text(encoding=self.encoding)
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    f"{path} is not valid {self.encoding} text: {error.reason} at byte offset {error.start} "
                    "(fix the file, or set the corpus option encoding)"
                ) from None
            if self.document_delimiter is None:
                yield key, text
                continue
            for index, part in enumerate(text.split(self.document_delimiter)):
                if part.strip():
                    yield f"{key}#{index}", part

    def _json_lines(self, key: str, path: Path) -> Iterator[tuple[str, str]]:
        with path.open(encoding=self.encoding) as handle:
            for number, line in enumerate(handle):
                if line.strip():
                    yield f"{key}:{number}", json.loads(line)[self.text_field]

    def fingerprint(self) -> str:
        parts = [repr((self.pattern, self.document_delimiter, self.text_field, self.encoding, self.exclude))]
        for key, path in self.files():
            stat = path.stat()
            parts.append(f"{key}\0{stat.st_size}\0{stat.st_mtime_ns}")
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
