"""Export a training run's latest EMA weights as the shipped demo model (src/dind/assets/tiny-shakespeare).

    python scripts/export_demo.py runs/demo [--out src/dind/assets/tiny-shakespeare]
        [--block-size 4] [--overwrite]

What it writes, in BD3-LM's checkpoint format: config.json with the drafting ``block_size`` (BD3-LM's
own model class falls back to blocks of 1 without it), model.safetensors with the parameters in
bf16 (half the bytes; on a CPU dind computes in fp32) and the buffers in fp32, and the run's
train_config.yaml. It prints the largest logit change the bf16 storage makes on a fixed batch, and
leaves the model card (README.md) to be written from measured numbers (``dind nelbo``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import attrs
import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from dind.errors import UserError
    from dind.locks import output_locks

    try:
        with output_locks():  # the outputs' lock files go with the locks
            return _export(argv)
    except UserError as error:
        print(f"export_demo: error: {error}", file=sys.stderr)
        return 1


def _export(argv: list[str] | None) -> int:
    from dind.models import load
    from dind.outputs import check_output

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a training run directory (its checkpoints/latest)")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "dind" / "assets" / "tiny-shakespeare")
    parser.add_argument("--block-size", type=int, default=4, help="the drafting block size (default: 4)")
    parser.add_argument("--overwrite", action="store_true", help="replace the weights and config in --out")
    args = parser.parse_args(argv)
    latest = args.run / "checkpoints" / "latest"
    if not (latest / "model.safetensors").is_file():
        print(f"export_demo: {latest} holds no model.safetensors (is {args.run} a run?)", file=sys.stderr)
        return 1
    for name in ("config.json", "model.safetensors"):
        check_output(args.out / name, overwrite=args.overwrite)
    model = load(latest, dtype=torch.float32).eval()
    model.config = attrs.evolve(model.config, block_size=args.block_size)
    tokens = torch.randint(0, 256, (4, model.model_length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model.logits(tokens, block_size=None)
        for parameter in model.parameters():  # buffers (the clipped time range) stay fp32, unrounded
            parameter.data = parameter.data.to(torch.bfloat16)
        after = load_roundtrip(model, args.out)(tokens)
    shutil.copyfile(latest / "train_config.yaml", args.out / "train_config.yaml")
    change = float((after - before).abs().max())
    print(json.dumps({"from": str(latest), "to": str(args.out), "block_size": args.block_size,
                      "max_logit_change_bf16": round(change, 4)}))  # fmt: skip
    return 0


def load_roundtrip(model, out: Path):
    """Save ``model`` to ``out`` and return the saved model's fp32 logits function (what users get)."""
    from dind.models import load, save_pretrained

    save_pretrained(model, out)
    reloaded = load(out, dtype=torch.float32).eval()
    return lambda tokens: reloaded.logits(tokens, block_size=None)


if __name__ == "__main__":
    raise SystemExit(main())
