"""Two NELBO reports of `dind nelbo` on the same chunks and noise, compared pair by pair.

Both reports score the same sequences with the same noise draws (same data, length, chunk format,
batch size, seed and number of batches: checked, and the chunks' fingerprint must match), so the
per-sequence differences ``this - reference`` pair up and their mean and standard error decide a
verdict by ``dind.eval.verdicts.RULE``. Pairing removes most of the data's and the noise's
variance: two models 0.02 nats apart are told apart on a few hundred sequences, where each
model's own ± (over sequences) is larger than the gap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dind.eval.verdicts import RULE, PairedDifference

# what makes two reports score the same sequences with the same noise
SAME = (
    "tokenizer", "length", "chunk_format", "chunks", "chunks_sha256", "batch_size", "seed", "num_batches",
    "precision",
)  # fmt: skip


def read_report(path: Path, *, parameter: str = "--compare") -> dict[str, Any]:
    """The JSON report of `dind nelbo --out` at ``path``; a ``ValueError`` naming ``parameter`` when
    it cannot be read or holds no results."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{parameter} must be a JSON report of dind nelbo --out (got {str(path)!r}: {error})"
        ) from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise ValueError(
            f"{parameter} must be a JSON report of dind nelbo --out (got {str(path)!r}: no results)"
        )
    return report


def compare_reports(
    report: Mapping[str, Any], reference: Mapping[str, Any], *, parameter: str = "--compare"
) -> dict[str, Any]:
    """``{"rule", "differences": [{"block_size", "mean", "se", "n", "verdict"}, ...]}`` for every
    block size both reports scored; a ``ValueError`` naming ``parameter`` when they did not score
    the same sequences and noise, or when ``reference`` holds no per-sequence values."""
    check_comparable(report, reference, parameter=parameter)
    theirs = {row["block_size"]: row for row in reference.get("results", [])}
    differences = []
    for row in report["results"]:
        other = theirs.get(row["block_size"])
        if other is None:
            continue
        if not other.get("per_sequence"):
            raise ValueError(
                f"{parameter} must hold per-sequence values (a report of this dind version; got none "
                f"at block size {row['block_size']}: rerun it)"
            )
        difference = PairedDifference.of(row["per_sequence"], other["per_sequence"])
        differences.append(
            {"block_size": row["block_size"], "mean": difference.mean, "se": difference.se,
             "n": difference.n, "verdict": difference.verdict()}
        )  # fmt: skip
    if not differences:
        raise ValueError(
            f"{parameter} must share a block size with this run (got {sorted(theirs)}, this run "
            f"{[row['block_size'] for row in report['results']]})"
        )
    return {"rule": RULE, "differences": differences}


def check_comparable(
    settings: Mapping[str, Any], reference: Mapping[str, Any], *, parameter: str = "--compare"
) -> None:
    """A ``ValueError`` naming ``parameter`` unless ``settings`` (a report, or its settings before
    scoring) and ``reference`` score the same sequences with the same noise (the keys of ``SAME``)."""
    differing = [
        f"{key} {reference.get(key)!r} (this run: {settings.get(key)!r})"
        for key in SAME
        if settings.get(key) != reference.get(key)
    ]
    if differing:
        raise ValueError(
            f"{parameter} must be a report on the same chunks and noise (differs in: {'; '.join(differing)})"
        )
