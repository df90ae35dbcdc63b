"""A block-size distribution in one file: a geometric mix over the powers of two.

    dind --plugin examples/geometric_block_sizes.py train --config configs/tiny-shakespeare.yaml \\
        objective.block_sizes=geometric:4,256,0.5
    python examples/geometric_block_sizes.py        # prints the law and a seeded draw

"geometric:4,256,0.5" trains on 4, 8, ..., 256 with P(4 * 2**k) proportional to 0.5**k: mostly
small (draft) blocks, with every larger scale seen some of the time (a smoother PAPER Eq. 8).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.textform import format_number
from dind.training import BLOCK_SIZE_DISTRIBUTIONS
from dind.validation import positive_int, positive_number


@BLOCK_SIZE_DISTRIBUTIONS.register("geometric")
@attrs.frozen
class GeometricBlockSize:
    smallest: int = attrs.field(default=4, validator=positive_int)
    largest: int = attrs.field(default=1024)
    decay: float = attrs.field(default=0.5, converter=float, validator=positive_number)

    @largest.validator
    def _power_of_two_above(self, attribute: attrs.Attribute, value: int) -> None:
        ratio = value // self.smallest
        if value < self.smallest or value % self.smallest or ratio & (ratio - 1):
            raise ValueError(
                f"largest must be smallest * 2**k (got largest={value}, smallest={self.smallest})"
            )

    @classmethod
    def from_args(cls, values: list[str]) -> GeometricBlockSize:
        smallest, largest, *rest = values
        return cls(int(smallest), int(largest), *(float(value) for value in rest))

    def __str__(self) -> str:
        return f"geometric:{self.smallest},{self.largest},{format_number(self.decay)}"

    def support(self) -> tuple[int, ...]:
        return tuple(self.smallest * 2**k for k in range((self.largest // self.smallest).bit_length()))

    def probabilities(self) -> tuple[float, ...]:
        weights = [self.decay**k for k in range(len(self.support()))]
        return tuple(weight / sum(weights) for weight in weights)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer (got {n!r})")
        probs = torch.tensor(self.probabilities(), dtype=torch.float64)
        index = torch.multinomial(probs, n, replacement=True, generator=generator)
        return torch.tensor(self.support(), dtype=torch.long)[index]


if __name__ == "__main__":
    from dind.training.block_sizes import parse_block_sizes

    law = parse_block_sizes("geometric:4,256,0.5")
    print(f"{law}: support {law.support()}")
    print("probabilities", [round(p, 4) for p in law.probabilities()])
    print("draw", law.sample(12, generator=torch.Generator().manual_seed(0)).tolist())
