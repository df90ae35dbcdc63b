"""Counter-based random numbers: every uniform is a pure function of (row key, labels, counter).

The sampler needs, at every step, a few uniforms per position of a block and one Gumbel vector
per proposed position, each row from its own stream so that a row sampled in a batch equals the
same row sampled alone. Drawing them from one ``torch.Generator`` per row meant a Python loop over
the rows at every step. Here a draw is a hash instead: a row's 64-bit key (from its seed) is
folded with labels that name the draw (stage, block, step, position, purpose) and the counter
(e.g. the vocabulary index) goes through SplitMix64's finaliser, so a whole batch of draws is a
handful of elementwise int64 tensor ops, on any device, with no state to carry.

The hash is SplitMix64 (Steele, Lea and Flood 2014; the finaliser of ``java.util.SplittableRandom``):
``mix64(key + (i + 1) * 0x9E3779B97F4A7C15)`` for counter i is SplitMix64's own output sequence
(it passes BigCrush). torch's int64 arithmetic wraps like uint64's modulo 2^64; right shifts are
arithmetic on signed ints, so every shift is masked to make it logical. Uniforms take the top 52
bits: (bits + 0.5) / 2^52 lies in [2^-53, 1 - 2^-53], never exactly 0 or 1, so -log(-log u) is
always finite.

This module imports nothing from dind (the remaskers and the sampler both use it).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor

_U64 = 1 << 64


def _signed(value: int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value`` (mod 2^64)."""
    value %= _U64
    return value - _U64 if value >= 1 << 63 else value


GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)
_UNIT = 2.0**-52

# labels naming what a draw is for (domain separation: two purposes never share a stream)
ROOT = 0x5EED
RULE = 1  # the unmasking rule's per-position uniforms
GUMBEL = 2  # the proposal's per-(position, vocab) Gumbel noise
REMASK_TIES = 3  # choose_remasked's tie-break keys
CONTEXT = 4  # RemaskContext.uniform
ATTEMPT = 5  # regenerate_rows' redraws (redraw_low_entropy)
STAGE = 6  # a stage's block sampling (then block, step, RULE or GUMBEL)
REMASK = 7  # a stage's remasking (then REMASK_TIES or CONTEXT)


def _shr(x: Tensor, shift: int) -> Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic: mask the sign copies)."""
    return (x >> shift) & ((1 << (64 - shift)) - 1)


def mix64(x: Tensor) -> Tensor:
    """SplitMix64's finaliser on int64 tensors (a bijection of the 64-bit patterns)."""
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def fold(keys: Tensor, label: int | Tensor) -> Tensor:
    """keys (int64) folded with ``label`` (an int or an int64 tensor broadcast against keys):
    ``mix64(keys + mix64(label * GOLDEN))``; the order of folds matters."""
    label = torch.as_tensor(label, dtype=torch.int64, device=keys.device)
    return mix64(keys + mix64(label * GOLDEN))


def bits_to_unit(bits: Tensor) -> Tensor:
    """int64 bits -> float64 uniforms in [2^-53, 1 - 2^-53] from the top 52 bits (never 0 or 1)."""
    return (_shr(bits, 12).double() + 0.5) * _UNIT


def uniform(keys: Tensor, count: int) -> Tensor:
    """keys (...) int64 -> (..., count) float64 uniforms: counter i of key k is
    SplitMix64's i-th output from state k."""
    counters = torch.arange(1, count + 1, dtype=torch.int64, device=keys.device) * GOLDEN
    return bits_to_unit(mix64(keys[..., None] + counters))


def gumbel(keys: Tensor, count: int) -> Tensor:
    """keys (...) int64 -> (..., count) float64 Gumbel(0, 1) noise -log(-log u), always finite."""
    return -torch.log(-torch.log(uniform(keys, count)))


def seed_keys(seeds: Sequence[int] | Tensor, device: torch.device | str | None = None) -> Tensor:
    """(rows,) int64 keys from seeds in 0..2^64-1 (each seed's 64 bits, folded with ROOT)."""
    if isinstance(seeds, Tensor):
        raw = seeds.to(device=device, dtype=torch.int64)
    else:
        raw = torch.tensor([_signed(int(seed)) for seed in seeds], dtype=torch.int64, device=device)
    return fold(raw.reshape(-1), ROOT)


@attrs.frozen(eq=False)
class RowStreams:
    """One counter-based random stream per row: ``keys`` (batch,) int64.

    ``child(*labels)`` names a sub-stream (same for every row); ``uniform(n)`` is (batch, n)
    float64 in (0, 1). Row r's draws depend only on ``keys[r]`` and the labels, never on the
    other rows, so a row of a batch draws what it draws alone. Build with ``from_seeds`` (what
    ``generate`` does) or ``from_generators`` (one 63-bit seed drawn from each generator)."""

    keys: Tensor = attrs.field()

    @keys.validator
    def _check(self, attribute: attrs.Attribute, value: Tensor) -> None:
        if not isinstance(value, Tensor) or value.dtype != torch.int64 or value.dim() != 1:
            raise ValueError(
                f"keys must be a (batch,) int64 tensor (got {type(value).__name__} "
                f"{getattr(value, 'dtype', '')} {tuple(getattr(value, 'shape', ()))})"
            )

    @classmethod
    def from_seeds(
        cls, seeds: Sequence[int] | Tensor, device: torch.device | str | None = None
    ) -> RowStreams:
        return cls(seed_keys(seeds, device))

    @classmethod
    def from_generators(
        cls, generators: Sequence[torch.Generator], device: torch.device | str | None = None
    ) -> RowStreams:
        """One seed per generator (``torch.randint(2**63)`` from it: the generator advances)."""
        seeds = [int(torch.randint(0, 2**63 - 1, (1,), generator=g, device=g.device)) for g in generators]
        return cls.from_seeds(seeds, device)

    @property
    def batch(self) -> int:
        return self.keys.shape[0]

    @property
    def device(self) -> torch.device:
        return self.keys.device

    def child(self, *labels: int | Tensor) -> RowStreams:
        """The sub-stream named by ``labels`` (ints, or (batch,) int64 tensors: one label per row)."""
        keys = self.keys
        for label in labels:
            keys = fold(keys, label)
        return RowStreams(keys)

    def rows(self, index: Sequence[int] | Tensor) -> RowStreams:
        """The streams of the given rows (a row keeps its stream)."""
        return RowStreams(self.keys[torch.as_tensor(index, dtype=torch.long, device=self.keys.device)])

    def to(self, device: torch.device | str) -> RowStreams:
        return RowStreams(self.keys.to(device))

    def uniform(self, count: int) -> Tensor:
        """(batch, count) float64 uniforms in (0, 1); column i is counter i of each row's stream."""
        return uniform(self.keys, count)


def as_row_streams(value: RowStreams | Sequence[torch.Generator]) -> RowStreams:
    """A RowStreams as is; a sequence of torch.Generators -> ``RowStreams.from_generators``."""
    if isinstance(value, RowStreams):
        return value
    generators = list(value)
    if not all(isinstance(g, torch.Generator) for g in generators):
        kinds = sorted({type(g).__name__ for g in generators})
        raise ValueError(f"expected a RowStreams or one torch.Generator per row (got {', '.join(kinds)})")
    if not generators:
        return RowStreams(torch.empty(0, dtype=torch.int64))
    return RowStreams.from_generators(generators, generators[0].device)
