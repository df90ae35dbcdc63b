"""Table 3 at small scale, training side: validation NELBO per block size of the three variants.

Reads the run directories written by ``dind train --config configs/table3/<variant>.yaml``
(their ``metrics.jsonl`` and ``config.yaml``) and writes ``table3-training.{json,md,png}``:
the final validation NELBO (nats/byte, EMA weights) at every block size a variant evaluates,
the curve over steps, the token budget and the wall time.

A metrics file that holds lines of an earlier, abandoned attempt (a restart before the run
directory rules existed) is read as "the last line for each (kind, step)", which is the line of
the run whose checkpoint is on disk.

With ``--checkpoints DIR`` (DIR/<variant> = a final checkpoint: config.json + model.safetensors)
every variant is also evaluated at every block size of the uniform mix (4, 16, 64, 256) on the
same validation batches (the held-out play henry_vi_part_2, ``--eval-batches`` batches of 8,
seed 0, dropout off) with ``dind.training.likelihood.likelihood``, what ``dind nelbo`` runs: a
like-for-like table, since training only evaluates the sizes it draws.

Usage: python benchmarks/table3_training.py RUNS_DIR [--checkpoints DIR] [--out-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIANTS = ("fixed4", "uniform", "bimodal")


def read_run(run: Path) -> dict:
    evals: dict[int, dict] = {}
    trains: dict[int, dict] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        (evals if record["kind"] == "eval" else trains)[record["step"]] = record
    last = trains[max(trains)]
    curve = {
        step: {
            key[len("val_nelbo_block") :]: value
            for key, value in record.items()
            if key.startswith("val_nelbo_block")
        }
        for step, record in sorted(evals.items())
    }
    return {
        "steps": last["step"],
        "tokens_seen": last["tokens_seen"],
        "elapsed_s": round(last["elapsed_s"], 1),
        "final": curve[max(curve)],
        "curve": curve,
    }


def evaluate_checkpoints(checkpoints: Path, batches: int) -> dict[str, dict[str, float]]:
    """Validation NELBO of each variant's final weights at 4, 16, 64 and 256 on the same batches:
    ``dind.training.likelihood`` (what ``dind nelbo`` runs) on the held-out play of the split."""
    import torch

    from dind.data.tokenizers import tokenizer_for_model
    from dind.models.loading import load
    from dind.training.likelihood import LikelihoodOptions, likelihood, text_chunks

    validation = Path(__file__).parent.parent / "data" / "shakespeare" / "henry_vi_part_2.txt"
    results = {}
    for name in VARIANTS:
        if not (checkpoints / name).is_dir():
            continue
        model = load(checkpoints / name, device=torch.device("cpu")).eval()
        _, tokenizer = tokenizer_for_model(model)
        chunks = text_chunks([validation], tokenizer, 256)
        found = likelihood(
            model, chunks, (4, 16, 64, 256), LikelihoodOptions(batch_size=8, num_batches=batches)
        )
        results[name] = {str(item.block_size): item.nelbo for item in found}
        print(name, results[name], flush=True)
    return results


def write_markdown(runs: dict[str, dict], path: Path, same_batches: dict | None = None) -> None:
    sizes = sorted({int(size) for run in runs.values() for size in run["final"]})
    header = "| variant | steps | tokens | wall s | " + " | ".join(f"block {s}" for s in sizes) + " |"
    lines = [
        "# Table 3 at small scale: training (validation NELBO, nats/byte, lower is better)",
        "",
        "Configs: `configs/table3/{fixed4,uniform,bimodal}.yaml` (tiny DiT, 5.5M parameters, bytes, L = 256,",
        "400 steps x 8 x 256 = 819,200 tokens each, cosine lr 1e-3, EMA 0.999), generator split of",
        "data/shakespeare (the judge's six plays excluded); validation = one held-out play (seeded hash).",
        "Measured with the EMA weights at the end of training. `-` = not evaluated for that variant.",
        "Wall s: the run's own clock (a resumed run: since its last start), on a shared machine.",
        "",
        header,
        "|" + "---|" * (4 + len(sizes)),
    ]
    for name, run in runs.items():
        cells = [f"{run['final'][str(s)]:.3f}" if str(s) in run["final"] else "-" for s in sizes]
        head = f"| {name} | {run['steps']} | {run['tokens_seen']:,} | {run['elapsed_s']:.0f} | "
        lines.append(head + " | ".join(cells) + " |")
    if same_batches:
        batches = same_batches["batches"]
        lines += [
            "",
            f"## The final weights at every block size, same validation batches ({batches} x 8 chunks)",
            "",
            "| variant | block 4 | block 16 | block 64 | block 256 |",
            "|---|---|---|---|---|",
        ]
        for name, values in same_batches["nelbo"].items():
            lines.append(
                f"| {name} | " + " | ".join(f"{values[s]:.3f}" for s in ("4", "16", "64", "256")) + " |"
            )
    lines += ["", "Curves: `table3-training.png`; every evaluation: `table3-training.json`.", ""]
    path.write_text("\n".join(lines))


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib.figure

    figure = matplotlib.figure.Figure(figsize=(9, 3.6))
    axes = figure.subplots(1, 2, sharey=True)
    for ax, size in zip(axes, ("4", "256"), strict=True):
        for name, run in runs.items():
            points = [(step, values[size]) for step, values in run["curve"].items() if size in values]
            if points:
                color = f"C{VARIANTS.index(name)}"  # one colour per variant in both panels
                ax.plot(*zip(*points, strict=True), marker="o", label=name, color=color)
        ax.set_title(f"validation NELBO, block {size}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nats/byte")
    for ax in axes:
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path, help="directory holding fixed4/, uniform/, bimodal/ run dirs")
    parser.add_argument("--checkpoints", type=Path, default=None, help="DIR/<variant>: final checkpoints")
    parser.add_argument("--eval-batches", type=int, default=16)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    runs = {name: read_run(args.runs_dir / name) for name in VARIANTS if (args.runs_dir / name).is_dir()}
    if not runs:
        raise SystemExit(f"no run directories {VARIANTS} under {args.runs_dir}")
    same_batches = None
    if args.checkpoints is not None:
        same_batches = {
            "batches": args.eval_batches,
            "nelbo": evaluate_checkpoints(args.checkpoints, args.eval_batches),
        }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record = {"runs": runs, "same_batches": same_batches}
    (args.out_dir / "table3-training.json").write_text(json.dumps(record, indent=1) + "\n")
    write_markdown(runs, args.out_dir / "table3-training.md", same_batches)
    plot(runs, args.out_dir / "table3-training.png")
    print((args.out_dir / "table3-training.md").read_text())


if __name__ == "__main__":
    main()
