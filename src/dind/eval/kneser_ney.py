"""A byte n-gram judge with interpolated modified Kneser-Ney smoothing (Chen & Goodman, 1998).

A second Gen PPL judge of another family than the neural one: counts, no gradient, no context
window, trained in seconds on the judge split. Its ids are those of the byte-level neural judge
(``dind.eval.byte_judge``: bytes 0..255, 256 = BOS/EOS), so a byte generator's samples are
scored id for id, and text from any other tokenizer is scored through its UTF-8 bytes.

The model (order ``n``, vocabulary ``V = 257``), for a target ``w`` after context ``h``:

    p_k(w | h) = (max(c_k(h w) - D_k(c_k(h w)), 0) + gamma_k(h) p_{k-1}(w | h')) / t_k(h)

where ``h'`` drops the oldest symbol of ``h``, ``p_0 = 1 / V``, ``t_k(h) = sum_w c_k(h w)``
and ``gamma_k(h) = D_k1 N1(h) + D_k2 N2(h) + D_k3+ N3+(h)`` (``Ni(h)``: the words seen exactly
i times after ``h``, i >= 3 for the last). ``c_n`` is the raw count of the n-gram; lower orders
use continuation counts (the number of distinct symbols seen before the k-gram). The three
discounts of each order come from its count-of-counts ``m1..m4``: ``Y = m1 / (m1 + 2 m2)``,
``D1 = 1 - 2Y m2/m1``, ``D2 = 2 - 3Y m3/m2``, ``D3+ = 3 - 4Y m4/m3``. A context never seen
(``t_k(h) = 0``) defers to the lower order. Every document is left-padded with ``n - 1`` BOS, so
each training target has a full context; scored sequences are padded the same way.

Stored as the distinct n-grams and their counts (``ngrams.npz``): every lower-order table
follows from them, since each k-gram occurrence is the suffix of an n-gram occurrence at the same
target. Written plainly with numpy (sorted keys, ``searchsorted``): ``nltk.lm`` is pure Python
and much slower per query, and ``kenlm`` ships no trainer on PyPI.

    python -m dind.eval.kneser_ney --out src/dind/assets/judge-kn-shakespeare --order 6
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from dind.eval.byte_judge import BYTE_BOS, BYTE_JUDGE_VOCAB, ByteJudgeTokenizer
from dind.eval.genppl import ScoresSamples

MAX_ORDER = 7  # keys are base-257 numbers of n digits in int64: 257**7 < 2**63
JUDGE_KIND = "kneser_ney"
NGRAMS_FILE = "ngrams.npz"


def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be an integer in 1..{MAX_ORDER} (got {order!r})")
    return order


def _windows(ids: np.ndarray, order: int) -> np.ndarray:
    """(targets, order) keys' digits: each target with its ``order - 1`` predecessors (BOS-padded)."""
    padded = np.concatenate([np.full(order - 1, BYTE_BOS, dtype=np.int64), ids.astype(np.int64)])
    return np.lib.stride_tricks.sliding_window_view(padded, order)


def _keys(digits: np.ndarray) -> np.ndarray:
    """Base-V numbers of the rows of ``digits`` (the last symbol least significant)."""
    keys = np.zeros(digits.shape[0], dtype=np.int64)
    for column in range(digits.shape[1]):
        keys = keys * BYTE_JUDGE_VOCAB + digits[:, column]
    return keys


def _discounts(values: np.ndarray) -> np.ndarray:
    """(D1, D2, D3+) from the count-of-counts of ``values``, each clamped to [0, i]."""
    m = [int(np.count_nonzero(values == i)) for i in (1, 2, 3, 4)]
    if m[0] == 0 or m[1] == 0:  # too little data for the estimate: one absolute discount of 0.5
        return np.array([0.5, 0.5, 0.5])
    y = m[0] / (m[0] + 2 * m[1])
    d1 = 1 - 2 * y * m[1] / m[0]
    d2 = 2 - 3 * y * m[2] / m[1]
    d3 = 3 - 4 * y * m[3] / m[2] if m[2] else d2
    return np.clip(np.array([d1, d2, d3]), 0.0, [1.0, 2.0, 3.0])


@attrs.frozen
class _OrderTable:
    """One order's k-grams (sorted keys, counts) and per-context totals and discount weights."""

    keys: np.ndarray
    values: np.ndarray
    contexts: np.ndarray  # sorted context keys (k-gram key // V)
    totals: np.ndarray  # t_k(h)
    gammas: np.ndarray  # D1 N1(h) + D2 N2(h) + D3+ N3+(h)
    discounts: np.ndarray  # (D1, D2, D3+)

    @classmethod
    def build(cls, keys: np.ndarray, values: np.ndarray) -> _OrderTable:
        discounts = _discounts(values)
        context_of = keys // BYTE_JUDGE_VOCAB
        contexts, starts = np.unique(context_of, return_index=True)
        per_gram = discounts[np.minimum(values, 3) - 1]
        return cls(
            keys=keys,
            values=values,
            contexts=contexts,
            totals=np.add.reduceat(values, starts).astype(np.float64),
            gammas=np.add.reduceat(per_gram, starts),
            discounts=discounts,
        )

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, table: np.ndarray, queries: np.ndarray) -> np.ndarray:
        where = np.searchsorted(sorted_keys, queries).clip(max=len(sorted_keys) - 1)
        found = sorted_keys[where] == queries if len(sorted_keys) else np.zeros(len(queries), bool)
        return np.where(found, table[where] if len(table) else 0, 0)

    def interpolate(self, grams: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """p_k for the k-gram keys ``grams`` given p_{k-1} of the same targets (``lower``)."""
        counts = self._lookup(self.keys, self.values, grams)
        contexts = grams // BYTE_JUDGE_VOCAB
        totals = self._lookup(self.contexts, self.totals, contexts)
        gammas = self._lookup(self.contexts, self.gammas, contexts)
        discount = np.where(counts > 0, self.discounts[np.clip(counts, 1, 3) - 1], 0.0)
        seen = totals > 0
        safe = np.where(seen, totals, 1.0)
        return np.where(seen, (np.maximum(counts - discount, 0.0) + gammas * lower) / safe, lower)


@attrs.frozen
class KneserNeyJudge(ScoresSamples):
    """A byte n-gram LM with interpolated modified Kneser-Ney smoothing, used as a Gen PPL judge.

    Same scoring rules as the neural ``Judge``: the first id is never a target, EOS targets
    (id 256) are not scored, Gen PPL is the mean of per-sample perplexities.
    """

    order: int = attrs.field(validator=lambda _, __, value: _check_order(value))
    ngrams: np.ndarray = attrs.field(repr=False)  # distinct n-gram keys, sorted (int64)
    counts: np.ndarray = attrs.field(repr=False)  # their counts (int64)
    tables: tuple[_OrderTable, ...] = attrs.field(init=False, repr=False)
    tokenizer: ByteJudgeTokenizer = attrs.field(factory=ByteJudgeTokenizer, repr=False)

    @tables.default
    def _build_tables(self) -> tuple[_OrderTable, ...]:
        tables = [_OrderTable.build(self.ngrams, self.counts)]
        for k in range(self.order - 1, 0, -1):
            # distinct (k+1)-grams are the (k+1)-suffixes of the distinct n-grams; the continuation
            # count of a k-gram is the number of distinct (k+1)-grams ending with it
            longer = np.unique(self.ngrams % BYTE_JUDGE_VOCAB ** (k + 1))
            keys, counts = np.unique(longer % BYTE_JUDGE_VOCAB**k, return_counts=True)
            tables.append(_OrderTable.build(keys, counts.astype(np.int64)))
        return tuple(reversed(tables))  # tables[k - 1] is order k

    @classmethod
    def fit(cls, documents: Sequence[Sequence[int] | bytes], *, order: int) -> KneserNeyJudge:
        """Count the n-grams of ``documents`` (byte strings or id lists, each BOS-padded)."""
        _check_order(order)
        if not documents:
            raise ValueError("documents must hold at least one document (got none)")
        arrays = [
            np.frombuffer(bytes(d), np.uint8) if isinstance(d, bytes | bytearray) else np.asarray(d, np.int64)
            for d in documents
        ]
        keys = np.concatenate([_keys(_windows(ids, order)) for ids in arrays])
        ngrams, counts = np.unique(keys, return_counts=True)
        return cls(order=order, ngrams=ngrams, counts=counts.astype(np.int64))

    @property
    def vocab_size(self) -> int:
        return BYTE_JUDGE_VOCAB

    def log_probs(self, ids: Sequence[int]) -> np.ndarray:
        """Natural-log probability of each of ``ids[1:]`` given everything before it (float64)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= BYTE_JUDGE_VOCAB):
            bad = ids[(ids < 0) | (ids >= BYTE_JUDGE_VOCAB)][0]
            raise ValueError(f"ids must be byte-judge ids 0..{BYTE_JUDGE_VOCAB - 1} (got {int(bad)})")
        if ids.size < 2:
            return np.zeros(0)
        digits = _windows(ids, self.order)[1:]  # targets ids[1:], each with its padded context
        probability = np.full(len(digits), 1.0 / BYTE_JUDGE_VOCAB)
        for k, table in enumerate(self.tables, start=1):
            probability = table.interpolate(_keys(digits[:, -k:]), probability)
        return np.log(probability)

    def target_nll(self, ids: Sequence[Sequence[int]], *, progress: bool = False) -> tuple[Tensor, Tensor]:
        """Summed NLL (float64) and number of scored targets (long) per sample, both (samples,)."""
        nll_sum = torch.zeros(len(ids), dtype=torch.float64)
        count = torch.zeros(len(ids), dtype=torch.long)
        for row, seq in enumerate(ids):
            logp = self.log_probs(seq)
            scored = np.asarray(seq[1:], dtype=np.int64) != BYTE_BOS
            nll_sum[row] = float(-(logp * scored).sum())
            count[row] = int(scored.sum())
        return nll_sum, count

    def settings(self) -> dict[str, Any]:
        """What a result should record about the judge."""
        return {"judge_kind": JUDGE_KIND, "judge_order": self.order}

    def save(self, directory: str | Path, **record: Any) -> None:
        """``config.json`` (kind, order, ``record``) and ``ngrams.npz`` in ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / NGRAMS_FILE, ngrams=self.ngrams, counts=self.counts.astype(np.int32))
        config = {"dind_judge": JUDGE_KIND, "order": self.order, "vocab_size": BYTE_JUDGE_VOCAB, **record}
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> KneserNeyJudge:
        source = Path(directory)
        config = json.loads((source / "config.json").read_text())
        if config.get("dind_judge") != JUDGE_KIND:
            raise ValueError(f"{source} is not a Kneser-Ney judge (config.json dind_judge != {JUDGE_KIND!r})")
        with np.load(source / NGRAMS_FILE) as stored:
            ngrams, counts = stored["ngrams"].astype(np.int64), stored["counts"].astype(np.int64)
        if len(ngrams) != len(counts) or np.any(np.diff(ngrams) <= 0):
            raise ValueError(f"{source / NGRAMS_FILE}: n-grams must be distinct and sorted, one count each")
        return cls(order=int(config["order"]), ngrams=ngrams, counts=counts)


def is_kneser_ney_dir(directory: str | Path) -> bool:
    config = Path(directory) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("dind_judge") == JUDGE_KIND
    except (ValueError, AttributeError):
        return False


def validation_nll(judge: KneserNeyJudge, text: bytes) -> float:
    """Mean NLL (nats/byte) of every byte of ``text`` scored as one BOS-led document."""
    return float(-judge.log_probs([BYTE_BOS, *text]).mean())


def main(argv: Sequence[str] | None = None) -> int:
    from dind.eval.judge_training import JUDGE_PLAYS, VALIDATION_PLAY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--order", type=int, default=6, help=f"n-gram order, 1..{MAX_ORDER} (default 6)")
    parser.add_argument("--corpus-dir", type=Path, default=Path("data/shakespeare"))
    parser.add_argument("--try-orders", action="store_true", help="also print validation NLL of orders 2..7")
    args = parser.parse_args(argv)
    train_files = [name for name in JUDGE_PLAYS if name != VALIDATION_PLAY]
    documents = [(args.corpus_dir / name).read_bytes() for name in train_files]
    valid = (args.corpus_dir / VALIDATION_PLAY).read_bytes()
    if args.try_orders:
        for order in range(2, MAX_ORDER + 1):
            nll = validation_nll(KneserNeyJudge.fit(documents, order=order), valid)
            print(json.dumps({"order": order, "validation_nats_per_byte": round(nll, 4)}))
    began = time.perf_counter()
    judge = KneserNeyJudge.fit(documents, order=args.order)
    seconds = time.perf_counter() - began
    nll = validation_nll(judge, valid)
    record = {
        "train_files": train_files,
        "validation_file": VALIDATION_PLAY,
        "train_bytes": sum(len(d) for d in documents),
        "distinct_ngrams": len(judge.ngrams),
        "train_seconds": round(seconds, 2),
        "validation_nats_per_byte": round(nll, 4),
        "validation_ppl_per_byte": round(math.exp(nll), 4),
        "validation_bytes": len(valid),
        "discounts": [t.discounts.round(4).tolist() for t in judge.tables],
    }
    judge.save(args.out, **record)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
