"""The top-level API: dind.load, dind.generate, dind.StagePlan, lazily; model(tokens) works."""

import subprocess
import sys

import torch

import dind


def test_import_dind_does_not_import_torch():
    code = "import sys, dind; assert 'torch' not in sys.modules, 'torch imported'; print(dind.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_top_level_names_are_the_library_objects():
    from dind.models.loading import load
    from dind.sampling import StagePlan, generate

    assert dind.load is load and dind.generate is generate and dind.StagePlan is StagePlan
    assert {"load", "generate", "StagePlan"} <= set(dir(dind))


def test_load_then_generate_end_to_end():
    model = dind.load("micro")
    tokens = torch.randint(0, 257, (1, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(tokens), model.logits(tokens))
    plan = dind.StagePlan.parse("4 -> 16@0.5")
    result = dind.generate(model, plan, length=16, batch_size=1, seed=0)
    assert result.tokens.shape == (1, 16)
