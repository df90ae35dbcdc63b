"""Pictures of multi-stage generation: a stage trace and Gen PPL sweep curves (PAPER Figure 2).

Figures are plain ``matplotlib.figure.Figure`` objects drawn without pyplot, so plotting works
headless and importing this module leaves matplotlib's backend (and pyplot's state) alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

WRAP = 128  # positions per line of a stage strip: long sequences wrap instead of becoming 1 px wide


def stage_label(stage: Any, index: int, *, sample: int = 0) -> str:
    """E.g. "stage 2: B=1024, remask 0.5, NFE=312" (B=global for a global block)."""
    block = "global" if stage.block_size is None else stage.block_size
    ratio = f", remask {stage.remask_ratio:g}" if stage.remask_ratio else ""
    nfe = stage.nfe[sample] if getattr(stage.nfe, "ndim", 0) else stage.nfe
    return f"stage {index + 1}: B={block}{ratio}, NFE={int(nfe)}"


def trace_arrays(trace: Sequence[Any], *, sample: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(stages, length) confidences after each stage, (stages, length) positions remasked before
    each stage, and one label per stage, for row ``sample`` of a ``GenerationResult.trace``."""
    scores = np.stack([stage.scores[sample].detach().float().cpu().numpy() for stage in trace])
    remasked = np.stack([stage.remasked[sample].detach().cpu().numpy().astype(bool) for stage in trace])
    return scores, remasked, [stage_label(stage, k, sample=sample) for k, stage in enumerate(trace)]


def _wrap(values: np.ndarray, width: int, fill: float) -> np.ndarray:
    lines = math.ceil(values.shape[-1] / width)
    padded = np.full(lines * width, fill, dtype=float)
    padded[: values.shape[-1]] = values
    return padded.reshape(lines, width)


def stage_trace_figure(
    scores: np.ndarray,
    remasked: np.ndarray,
    labels: Sequence[str],
    *,
    frozen: np.ndarray | None = None,
    wrap: int = WRAP,
) -> Figure:
    """A row per stage: each position coloured by its confidence after the stage (viridis, 0..1),
    red dots on the positions remasked before the stage (and regenerated in it), frozen positions
    grey (``frozen``, and every non-finite score: trackers score a prompt +inf). Sequences longer
    than ``wrap`` wrap onto several lines per stage."""
    if scores.shape != remasked.shape or scores.ndim != 2 or len(labels) != scores.shape[0]:
        raise ValueError(
            f"scores and remasked must both be (stages, length) with one label per stage "
            f"(got {scores.shape}, {remasked.shape}, {len(labels)} labels)"
        )
    stages, length = scores.shape
    width = min(wrap, length)
    lines = math.ceil(length / width)
    size = (min(14.0, 2.0 + width / 10), 0.6 + stages * (0.35 * lines + 0.6))
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(stages, 1, squeeze=False)
    colormap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = None
    for k, axis in enumerate(axes[:, 0]):
        shown = scores[k].astype(float)
        shown = np.where(np.isfinite(shown), np.clip(shown, 0.0, 1.0), np.nan)
        if frozen is not None:
            shown = np.where(frozen, np.nan, shown)
        image = axis.imshow(
            np.ma.masked_invalid(_wrap(shown, width, np.nan)),
            cmap=colormap,
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            interpolation="nearest",
        )
        rows, cols = np.divmod(np.flatnonzero(remasked[k]), width)
        axis.scatter(cols, rows, s=max(2.0, 600.0 / width), c="red", marker="o", linewidths=0)
        axis.set_title(f"{labels[k]} ({int(remasked[k].sum())} remasked)", fontsize=9, loc="left")
        axis.set_yticks(range(lines), [str(line * width) for line in range(lines)], fontsize=7)
        axis.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("position (red dot: remasked before the stage; grey: frozen)", fontsize=8)
    figure.colorbar(image, ax=axes[:, 0].tolist(), label="snapshot confidence", fraction=0.03, pad=0.01)
    return figure


def plot_stage_trace(
    trace: Sequence[Any],
    path: str | Path,
    *,
    sample: int = 0,
    frozen: np.ndarray | None = None,
    wrap: int = WRAP,
) -> Path:
    """Write the stage trace picture of one sample of a generation to ``path`` (PNG)."""
    scores, remasked, labels = trace_arrays(trace, sample=sample)
    figure = stage_trace_figure(scores, remasked, labels, frozen=frozen, wrap=wrap)
    return _save(figure, path)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")  # a bare Figure renders with Agg for PNG
    return path


def _curves(records: Sequence[Mapping[str, Any]], x: str, group: str, metric: str) -> dict[Any, list]:
    """Points (x, metric) per value of ``group``; single-point groups only when no group is a curve,
    so an axes sweep (PAPER Figure 2) shows its two curves without stray dots from the other axis."""
    curves: dict[Any, list] = {}
    for record in records:
        if record.get(metric) is not None and math.isfinite(record[metric]):
            curves.setdefault(record[group], []).append((record[x], record[metric]))
    lines = {key: sorted(points) for key, points in sorted(curves.items())}
    if any(len(points) > 1 for points in lines.values()):
        lines = {key: points for key, points in lines.items() if len(points) > 1}
    return lines


def sweep_figure(
    records: Sequence[Mapping[str, Any]], *, baseline: float | None = None, metric: str = "gen_ppl"
) -> Figure:
    """Gen PPL vs stage-2 block size (one line per remask ratio) and vs remask ratio (one line
    per block size); ``records`` hold "block_size", "remask_ratio" and ``metric``. ``baseline``
    (the stage-1-only Gen PPL) is drawn as a dashed line on both panels."""
    figure = Figure(figsize=(10, 3.8))
    left, right = figure.subplots(1, 2)
    for ratio, points in _curves(records, "block_size", "remask_ratio", metric).items():
        left.plot(*zip(*points, strict=True), marker="o", label=f"ratio {ratio:g}")
    for block_size, points in _curves(records, "remask_ratio", "block_size", metric).items():
        right.plot(*zip(*points, strict=True), marker="o", label=f"B={block_size}")
    left.set_xscale("log", base=2)
    block_sizes = sorted({record["block_size"] for record in records})
    left.set_xticks(block_sizes, [str(size) for size in block_sizes])
    left.set_xlabel("stage-2 block size")
    right.set_xlabel("remask ratio")
    for axis in (left, right):
        if baseline is not None and math.isfinite(baseline):
            axis.axhline(baseline, color="grey", linestyle="--", label="stage 1 only")
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_sweep(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    baseline: float | None = None,
    metric: str = "gen_ppl",
) -> Path:
    """Write the sweep curves to ``path`` (PNG)."""
    return _save(sweep_figure(records, baseline=baseline, metric=metric), path)
