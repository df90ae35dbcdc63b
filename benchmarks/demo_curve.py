"""The shipped demo model's training curve, from its training runs' own metrics (no retraining).

A demo model is trained in one run or in stages (runs that start from the previous one's weights);
this script joins their `metrics.jsonl` on one step axis, draws the validation NELBO at every block
size with an optional reference curve (an earlier model's curve JSON, dotted), and writes
results/training-tiny-shakespeare.{json,md,png}. `training_cpu.py curve` trains a run and renders
it here.

    python benchmarks/demo_curve.py runs/demo \
        --reference benchmarks/results/training-tiny-shakespeare-whole-corpus.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from dind.training import TrainConfig
from dind.training.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]
NAME = "training-tiny-shakespeare"


def join_stages(runs: list[Path]) -> dict:
    """Each run's eval and train records, steps shifted by the steps of the runs before it. A later
    stage's step-0 evaluation (the previous stage's final weights again) is dropped."""
    evals, train, stages, offset = [], [], [], 0
    for index, run in enumerate(runs):
        config = TrainConfig.from_file(run / "config.yaml").to_dict()
        records = read_metrics(run / "metrics.jsonl")
        last = max((r["step"] for r in records), default=0)
        for record in records:
            if index and record["kind"] == "eval" and record["step"] == 0:
                continue
            shifted = {**record, "step": record["step"] + offset, "stage": index + 1}
            (evals if record["kind"] == "eval" else train).append(shifted)
        stages.append(
            {
                "run": str(run),
                "steps": config["steps"],
                "reached": last,
                "init": config["model"].get("init"),
                "lr": config["optim"]["lr"],
                "seed": config["seed"],
                "mean_tokens_per_s": _mean_rate(records),
                "minutes": max((r.get("elapsed_s") or 0.0 for r in records), default=0.0) / 60,
            }
        )
        offset += config["steps"]
    first = TrainConfig.from_file(runs[0] / "config.yaml").to_dict()
    return {"stages": stages, "config": first, "eval": evals, "train": train}


def _mean_rate(records: list[dict]) -> float:
    rates = [r["tokens_per_s"] for r in records if r["kind"] == "train" and r.get("tokens_per_s")]
    return sum(rates) / len(rates) if rates else float("nan")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals, train = result["eval"], result["train"]
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    axis.plot(
        [r["step"] for r in train], [r["loss"] for r in train], color="0.8", lw=1, label="training loss"
    )
    for key in sorted((k for k in evals[0] if k.startswith("val_nelbo_block")), key=lambda k: int(k[15:])):
        axis.plot(
            [r["step"] for r in evals],
            [r[key] for r in evals],
            "o-",
            ms=3,
            label=f"validation, block {key[15:]}",
        )
    reference = result.get("reference")
    if reference:
        axis.plot(
            [r["step"] for r in reference["eval"]],
            [r["val_nelbo_block4"] for r in reference["eval"]],
            ":",
            color="k",
            label=f"{reference['label']}, block 4",
        )
    start = 0
    for number, stage in enumerate(result["stages"], 1):
        if number > 1:
            axis.axvline(start, color="0.5", lw=0.8, ls="--")
            axis.text(
                start, 0.98, f" stage {number}", transform=axis.get_xaxis_transform(), va="top", fontsize=8
            )
        start += stage["steps"]
    axis.set_ylim(top=min(3.2, axis.get_ylim()[1]))
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("nats per byte")
    axis.set_title("tiny DiT (bytes) on Shakespeare: validation NELBO")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def markdown(result: dict) -> str:
    evals, config = result["eval"], result["config"]
    keys = sorted((k for k in evals[0] if k.startswith("val_nelbo_block")), key=lambda k: int(k[15:]))
    lines = [
        "# The demo model's training curve (CPU)",
        "",
        "Rendered by `python benchmarks/demo_curve.py` from the runs' own `metrics.jsonl` "
        f"on {result['machine']}. Batches of {config['batch_size']} x {config['data']['length']} bytes; "
        f"validation: the held-out play (henry_vi_part_2), {config['eval_batches']} batches, "
        "time range (1e-3, 1), EMA weights.",
        "",
        "| stage | run | steps | start | peak lr | seed | tokens/s (mean) | minutes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, stage in enumerate(result["stages"], 1):
        start = stage["init"] or "fresh weights"
        minutes = f"{stage['minutes']:.1f}" if "minutes" in stage else "-"
        lines.append(
            f"| {number} | `{stage['run']}` | {stage['reached']} of {stage['steps']} | `{start}` "
            f"| {stage['lr']:g} | {stage['seed']} | {stage['mean_tokens_per_s']:.0f} | {minutes} |"
        )
    reference = result.get("reference")
    lines += ["", "| step | stage | " + " | ".join(keys) + (" | reference, block 4 |" if reference else " |")]
    lines.append("|---|---|" + "---|" * (len(keys) + bool(reference)))
    ref = {r["step"]: r["val_nelbo_block4"] for r in reference["eval"]} if reference else {}
    for r in evals:
        cells = " | ".join(f"{r[k]:.4f}" for k in keys)
        extra = f" | {ref[r['step']]:.4f}" if r["step"] in ref else (" | " if reference else "")
        lines.append(f"| {r['step']} | {r['stage']} | {cells}{extra} |")
    if reference:
        lines += ["", f"Reference: {reference['label']} (`{reference['path']}`)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="the stages' run directories, in order")
    parser.add_argument("--reference", type=Path, help="an earlier curve JSON to draw dotted (block 4)")
    parser.add_argument("--reference-label", default="earlier whole-corpus model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    render(args.runs, args.out, reference=args.reference, reference_label=args.reference_label)


def render(runs: list[Path], out: Path, *, reference: Path | None = None, reference_label: str = "") -> None:
    """Join ``runs`` (in order) and write out/training-tiny-shakespeare.{json,md,png}."""
    result = join_stages(runs)
    result["machine"] = f"{_cpu()}, torch {torch.__version__}"
    if reference:
        earlier = json.loads(reference.read_text())
        result["reference"] = {"label": reference_label, "path": str(reference), "eval": earlier["eval"]}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2))
    (out / f"{NAME}.md").write_text(markdown(result))
    plot(result, out / f"{NAME}.png")
    print(f"wrote {out / NAME}.{{json,md,png}}")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
