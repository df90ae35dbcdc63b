"""Per-row seeds: row r of a batch generated with the int seed s uses ``row_seed(s, r)``."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence


def row_seed(seed: int, row: int) -> int:
    """The seed of row ``row`` of a batch generated with the int seed ``seed`` (63-bit hash)."""
    digest = hashlib.blake2b(f"dind-row-seed:{seed}:{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def row_seeds(seed: int | Sequence[int] | None, batch_size: int) -> list[int]:
    """One seed per row from an int (``row_seed``), per-row ints, or None (fresh random seeds)."""
    if seed is None:
        return [random.SystemRandom().randrange(2**63) for _ in range(batch_size)]
    if isinstance(seed, int):
        return [row_seed(seed, row) for row in range(batch_size)]
    seeds = [int(s) for s in seed]
    if len(seeds) != batch_size:
        raise ValueError(
            f"seed must be an int or one int per row (got {len(seeds)} seeds, batch_size {batch_size})"
        )
    return seeds
