"""Train the offline byte-level Gen PPL judge (a small GPT-2) on plays the generator never sees.

The judge's vocabulary is the 256 bytes plus one id (256) used as BOS/EOS, i.e. exactly the ids
of dind's ``bytes`` tokenizer without MASK, so a byte generator's samples are scored id for id
with no text round trip. Training windows are ``BOS + window`` bytes cut at random offsets of the
training plays (generator samples start mid-text after a BOS too); validation scores every byte
of the validation play once, in consecutive windows.

    python -m dind.eval.judge_training --out src/dind/assets/judge-shakespeare --minutes 14

``torch.set_num_threads(threads)`` keeps it polite on a shared machine. The recipe, loss and
time are written to ``training.json`` in the output directory (and summarised in its README).
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

from dind.validation import positive_int

JUDGE_PLAYS = (
    "julius_caesar.txt",
    "twelfth_night.txt",
    "merchant_of_venice.txt",
    "much_ado_about_nothing.txt",
    "henry_v.txt",
    "richard_ii.txt",
)
VALIDATION_PLAY = "twelfth_night.txt"
BYTE_BOS = 256  # the bytes tokenizer's EOS id doubles as the judge's BOS/EOS
JUDGE_VOCAB = 257


@attrs.frozen
class JudgeRecipe:
    """Everything that defines a judge training run (recorded next to the weights)."""

    corpus_dir: str = "data/shakespeare"
    train_files: tuple[str, ...] = tuple(p for p in JUDGE_PLAYS if p != VALIDATION_PLAY)
    validation_file: str = VALIDATION_PLAY
    n_layer: int = attrs.field(default=4, validator=positive_int)
    n_embd: int = attrs.field(default=192, validator=positive_int)
    n_head: int = attrs.field(default=4, validator=positive_int)
    n_positions: int = attrs.field(default=512, validator=positive_int)
    window: int = attrs.field(default=255, validator=positive_int)  # bytes per training row (+ BOS)
    batch_size: int = attrs.field(default=32, validator=positive_int)
    lr: float = 1.5e-3
    warmup_steps: int = 30
    max_steps: int = 100_000
    minutes: float = 14.0  # wall-clock budget for the training loop
    seed: int = 0
    threads: int = 1


def gpt2_config(recipe: JudgeRecipe) -> Any:
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=JUDGE_VOCAB,
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=BYTE_BOS,
        eos_token_id=BYTE_BOS,
        dind_tokenizer="bytes",  # read by dind.eval.judge.load_judge: ids are bytes, 256 = BOS/EOS
        dind_window=recipe.window + 1,  # the context it was trained on: longer text is scored in windows
    )


def read_bytes(corpus_dir: str | Path, files: Sequence[str]) -> Any:
    import torch

    data = b"".join((Path(corpus_dir) / name).read_bytes() for name in files)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


def validation_loss(model: Any, data: Any, *, window: int, batch_size: int = 16) -> tuple[float, int]:
    """Mean NLL (nats/byte) of every byte of ``data``, in consecutive BOS-led windows."""
    import torch
    import torch.nn.functional as F

    pieces = [data[i : i + window] for i in range(0, len(data), window)]
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(pieces), batch_size):
            for piece in pieces[begin : begin + batch_size]:  # ragged tail: one row at a time is fine
                ids = torch.cat([torch.tensor([BYTE_BOS]), piece])[None]
                logits = model(input_ids=ids).logits.float()
                nll = F.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
                total += float(nll)
                count += len(piece)
    model.train()
    return total / count, count


def train(recipe: JudgeRecipe, out: Path) -> dict[str, Any]:
    """Train until ``max_steps`` or ``minutes`` run out; save safetensors + training.json."""
    import torch
    from transformers import GPT2LMHeadModel

    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    train_data = read_bytes(recipe.corpus_dir, recipe.train_files)
    valid_data = read_bytes(recipe.corpus_dir, [recipe.validation_file])
    model = GPT2LMHeadModel(gpt2_config(recipe))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01, betas=(0.9, 0.95))
    budget_s = recipe.minutes * 60
    # the LR decays (cosine, to 10%) over the wall-clock budget, so a slow machine still anneals
    started = time.perf_counter()
    step, tokens, curve = 0, 0, []
    bos = torch.full((recipe.batch_size, 1), BYTE_BOS, dtype=torch.long)
    offsets_range = len(train_data) - recipe.window
    while step < recipe.max_steps:
        elapsed = time.perf_counter() - started
        if elapsed > budget_s:
            break
        progress = min(1.0, max(elapsed / budget_s, step / recipe.max_steps))
        lr = (
            recipe.lr
            * min(1.0, (step + 1) / recipe.warmup_steps)
            * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, offsets_range, (recipe.batch_size,), generator=generator)
        rows = train_data[starts[:, None] + torch.arange(recipe.window)]
        ids = torch.cat([bos, rows], dim=1)
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens += rows.numel()
        if step % 10 == 0:
            curve.append(
                {
                    "step": step,
                    "loss": float(loss.detach()),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(curve[-1]), flush=True)
    train_seconds = time.perf_counter() - started
    val_nll, val_bytes = validation_loss(model, valid_data, window=recipe.window)
    out.mkdir(parents=True, exist_ok=True)
    # fp32 when it fits the 10 MB budget, else bf16 (load_judge computes in fp32 either way)
    if sum(p.numel() for p in model.parameters()) * 4 > 10_000_000:
        model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    record = {
        "recipe": attrs.asdict(recipe),
        "steps": step,
        "train_tokens": tokens,
        "train_seconds": round(train_seconds, 1),
        "validation_nats_per_byte": round(val_nll, 4),
        "validation_ppl_per_byte": round(math.exp(val_nll), 4),
        "validation_bytes": val_bytes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "curve": curve,
        "torch": torch.__version__,
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=14.0)
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--corpus-dir", default="data/shakespeare")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    recipe = JudgeRecipe(
        corpus_dir=args.corpus_dir, minutes=args.minutes, max_steps=args.max_steps, threads=args.threads
    )
    record = train(recipe, args.out)
    print(json.dumps({k: v for k, v in record.items() if k != "curve"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
