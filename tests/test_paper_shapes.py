"""The paper's shapes end to end on CPU (issue 21 item 6): the 110M preset, GPT-2 BPE, L = 1024 and
2048 (windows), fine-tuning from a BD3-LM-format checkpoint and a GPT-2-Large-width judge, with the
smallest budgets (random weights: shapes, time and memory, not quality). About 15 minutes on one
CPU thread: slow. The faster tests of each part: tests/training (the trainer), tests/sampling
(windows, the samplers), tests/cli/test_evaluate.py (dind eval)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_110m_pipeline_runs_at_its_real_shapes_under_8_gib(tmp_path):
    spec = importlib.util.spec_from_file_location("paper_shapes", ROOT / "benchmarks" / "paper_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "paper.md"
    code = module.main(
        ["--train-steps", "1", "--steps-per-block", "1", "--judge-layers", "2", "--out", str(out)]
    )
    record = json.loads(out.with_suffix(".json").read_text())
    assert code == 0 and record["peak_gib"] < 8.0
    parts = record["parts"]
    assert [s["nfe"] for s in parts["sample_1024"]["stages"]] == [1023, 1]
    stages = parts["sample_2048"]["stages"]
    assert stages[0]["nfe"] == 2047 and stages[1]["nfe"] == 3  # three refinement windows of one step
    assert any("model_length 1024" in w for w in parts["sample_2048"]["warnings"])
    assert parts["judge"]["exit"] == 0 and parts["judge"]["num_scored_tokens"] > 2000
