"""Define a new remasker in a few lines and use it in a three-stage plan on the shipped tiny model.

    python examples/custom_remasker.py --prompt "ROMEO:" --seed 0

The remasker, "span", ranks each position by the mean snapshot confidence of the eligible
positions in a window around it, so the remasked set gathers into spans (whole doubtful words,
not isolated bytes). A remasker only returns keys (lower = remasked first); the sampler keeps the
contract: exactly floor(ratio * n_eligible) eligible positions per row.
"""

from __future__ import annotations

import argparse

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from dind.data import TOKENIZERS
from dind.demo import packaged_checkpoint, render
from dind.models import from_pretrained
from dind.remaskers import REMASKERS, RemaskContext, SnapshotRemasker
from dind.sampling import ConfidenceTopK, GenerateOptions, Stage, StagePlan, generate


@REMASKERS.register("span")
@attrs.frozen
class SpanRemasker:
    """Remask the positions whose window of 2 * radius + 1 has the lowest mean eligible score."""

    radius: int = attrs.field(default=2, validator=attrs.validators.ge(0))

    def keys(self, tokens: Tensor, scores: Tensor, eligible: Tensor, *, context: RemaskContext) -> Tensor:
        # frozen positions score +inf and masked ones carry stale scores: average eligible ones only
        weight = eligible.double()[:, None, :]
        value = torch.where(eligible, scores.double(), 0.0)[:, None, :]
        width = 2 * self.radius + 1
        total = F.avg_pool1d(value, width, stride=1, padding=self.radius, count_include_pad=True)
        count = F.avg_pool1d(weight, width, stride=1, padding=self.radius, count_include_pad=True)
        # an eligible centre has count >= 1 / width; the sampler never chooses ineligible ones
        return (total / count.clamp_min(1e-12)).squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=256, help="sample length, prompt included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", default="ROMEO:")
    args = parser.parse_args()

    checkpoint = packaged_checkpoint()
    if checkpoint is None:
        raise SystemExit("the package holds no tiny-shakespeare checkpoint (dind/assets)")
    model = from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = TOKENIZERS.build("bytes")

    plan = StagePlan(
        [
            Stage(4),  # draft with blocks of 4
            Stage(32, remask_ratio=0.25, remasker=SnapshotRemasker()),  # the paper's remasker
            # ours, then one global block revealing its 32 most confident positions first
            Stage(None, 0.5, remasker=SpanRemasker(), unmasking=ConfidenceTopK(), steps=32),
        ]
    )
    print(f"plan: {plan}  (length {args.length}, seed {args.seed}, prompt {args.prompt!r})")
    with torch.no_grad():
        result = generate(
            model,
            plan,
            length=args.length,
            prompt=tokenizer.encode(args.prompt),
            seed=args.seed,
            options=GenerateOptions(bos_id=tokenizer.eos_id),
        )

    for k, stage in enumerate(result.trace):
        if k > 0:
            print(f"\n-- before stage {k + 1}: {int(stage.remasked[0].sum())} positions remasked (_) --")
            print(render(result.trace[k - 1].tokens[0], tokenizer, hidden=stage.remasked[0]))
        block = "global" if stage.block_size is None else stage.block_size
        print(f"\n-- stage {k + 1} (block {block}): NFE {int(stage.nfe[0])} --")
        print(render(stage.tokens[0], tokenizer))
    print(f"\ntotal NFE {int(result.nfe[0])}")


if __name__ == "__main__":
    main()
