"""A remasker that needs the model, in one file: predictive entropy of the finished draft.

    dind --plugin examples/entropy_remasker.py sample --model micro --tokenizer bytes \\
        --length 64 --plan "4 -> 64@0.5:entropy"
    python examples/entropy_remasker.py --length 64     # the same from Python, with a trace

Before the stage, one extra forward re-reads the whole finished draft (bidirectional attention)
and each position gets the entropy of the model's distribution there. The most uncertain
positions go back to MASK. The sampler gives the model through ``RemaskContext`` and applies the
exact count floor(gamma * n_eligible) itself, ties broken by each row's random stream.
"""

from __future__ import annotations

import argparse

import attrs
import torch
from torch import Tensor

from dind.remaskers import REMASKERS, RemaskContext
from dind.sampling import GenerateOptions
from dind.validation import optional_positive_int


@REMASKERS.register("entropy")
@attrs.frozen
class EntropyRemasker:
    """Keys = minus the entropy (nats) of the model's distribution at each position given the draft."""

    block_size: int | None = attrs.field(default=None, validator=optional_positive_int)

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        probs = context.draft_probs(tokens, block_size=self.block_size).double()
        return (probs * probs.clamp_min(1e-300).log()).sum(-1)  # -entropy: uncertain = low = first


def main() -> None:
    from dind.data import TOKENIZERS
    from dind.demo import packaged_checkpoint
    from dind.models import from_pretrained
    from dind.sampling import StagePlan, generate

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--plan", default="4 -> L@0.5:entropy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    checkpoint = packaged_checkpoint()
    if checkpoint is None:
        raise SystemExit("the package holds no tiny-shakespeare checkpoint (dind/assets)")
    model = from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = TOKENIZERS.build("bytes")
    plan = StagePlan.parse(args.plan)  # ":entropy" is a registered name now; no mapping needed
    result = generate(
        model,
        plan,
        length=args.length,
        batch_size=2,
        seed=args.seed,
        options=GenerateOptions(bos_id=tokenizer.eos_id),
    )
    print(f"plan: {plan}")
    for index, stage in enumerate(result.trace, start=1):
        print(f"stage {index}: remasked per row {stage.remasked.sum(1).tolist()}")
    print(f"sample: {tokenizer.decode(result.tokens[0].tolist())!r}")


if __name__ == "__main__":
    main()
