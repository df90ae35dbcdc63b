"""Stage trace and sweep pictures are written as PNGs from trace-shaped data."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dind.eval.plots import plot_stage_trace, plot_sweep, stage_trace_figure, trace_arrays


def fake_trace(length=200, generator=None):
    scores1 = torch.rand(2, length, generator=generator)
    remasked2 = scores1 < 0.5
    scores2 = torch.where(remasked2, torch.rand(2, length, generator=generator), scores1)
    return (
        SimpleNamespace(
            block_size=4,
            remask_ratio=0.0,
            nfe=200,
            scores=scores1,
            remasked=torch.zeros(2, length, dtype=torch.bool),
        ),
        SimpleNamespace(block_size=200, remask_ratio=0.5, nfe=30, scores=scores2, remasked=remasked2),
    )


def test_trace_arrays_pick_one_sample(generator):
    trace = fake_trace(generator=generator)
    scores, remasked, labels = trace_arrays(trace, sample=1)
    assert scores.shape == remasked.shape == (2, 200)
    np.testing.assert_array_equal(remasked[1], trace[1].remasked[1].numpy())
    assert labels == ["stage 1: B=4, NFE=200", "stage 2: B=200, remask 0.5, NFE=30"]


def test_stage_trace_png_is_written(tmp_path, generator):
    frozen = np.zeros(200, dtype=bool)
    frozen[:3] = True
    path = plot_stage_trace(fake_trace(generator=generator), tmp_path / "sub" / "trace.png", frozen=frozen)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stage_trace_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="scores and remasked must both be"):
        stage_trace_figure(np.zeros((2, 5)), np.zeros((2, 6), dtype=bool), ["a", "b"])


def test_sweep_png_is_written(tmp_path):
    records = [{"block_size": b, "remask_ratio": 0.5, "gen_ppl": 30.0 / b} for b in (4, 16, 64)]
    records += [{"block_size": 64, "remask_ratio": r, "gen_ppl": 1.0 + r} for r in (0.25, 0.75)]
    records += [{"block_size": 16, "remask_ratio": 0.25, "gen_ppl": float("nan")}]
    path = plot_sweep(records, tmp_path / "sweep.png", baseline=2.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
