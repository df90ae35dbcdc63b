"""Train the byte-level `tiny` DiT on Shakespeare with the mixed-scale objective, from Python.

    python examples/train_shakespeare.py --steps 300 --out runs/example
    python examples/train_shakespeare.py --steps 300 --draft 4 --global-probability 0.0   # fixed small blocks

The same run from the command line: `dind train --config configs/tiny-shakespeare.yaml steps=300`.
``config.build()`` makes the components (model, objective, data, AdamW, LambdaLR) and the Trainer;
docs/guide.md ("From Python") builds each by hand instead, to swap any of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import dind
from dind.data import TOKENIZERS
from dind.training import TrainConfig, apply_overrides, find_checkpoint
from dind.training.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--draft", type=int, default=4, help="draft block size")
    parser.add_argument(
        "--global-probability", type=float, default=0.1, help="lambda: share of global-block rows"
    )
    parser.add_argument("--out", default="runs/example-shakespeare")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    args = parser.parse_args()

    base = TrainConfig.from_file(ROOT / "configs" / "tiny-shakespeare.yaml").to_dict()
    config = TrainConfig.from_dict(
        apply_overrides(
            base,
            [
                f"steps={args.steps}",
                f"batch_size={args.batch_size}",
                f"out_dir={args.out}",
                f"data.length={args.length}",
                f"model.preset.model_length={args.length}",
                f"data.corpus.paths=[{ROOT / 'data' / 'shakespeare'}]",
                f"objective.block_sizes={{name: bimodal, draft: {args.draft}, global_size: {args.length}, "
                f"global_probability: {args.global_probability}}}",
            ],
        )
    )
    trainer = config.build(overwrite=args.overwrite)  # an earlier run in --out is never replaced unasked
    trainer.fit()

    print("step  val NELBO (nats/byte)")
    for record in read_metrics(Path(args.out) / "metrics.jsonl"):
        if record["kind"] == "eval":
            print(f"{record['step']:5d}  {record['val_nelbo']:.4f}")

    # the checkpoint is a BD3-LM-format directory: load the EMA weights like any released model,
    # then let it infill a masked span of held-out text in one bidirectional (global-block) pass
    model = dind.load(find_checkpoint(args.out))
    tokenizer = TOKENIZERS.build(config.data.tokenizer.name, **config.data.tokenizer.options)
    clean = trainer.validation.batch(0)[:1]
    length = clean.shape[1]
    start, end = length // 4, length // 2  # mask the second quarter, show the first three
    span = torch.zeros_like(clean, dtype=torch.bool)
    span[:, start:end] = True
    with torch.no_grad():
        logits = model.logits(clean.masked_fill(span, model.mask_id))
    logits[..., model.mask_id] = float("-inf")
    filled = torch.where(span, logits.argmax(-1), clean)
    shown = slice(0, 3 * length // 4)
    print("held-out text:", repr(tokenizer.decode(clean[0, shown].tolist())))
    print("infilled     :", repr(tokenizer.decode(filled[0, shown].tolist())))


if __name__ == "__main__":
    main()
