"""Every script in examples/ runs end to end with tiny arguments and prints its key line."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 120  # a guard against hangs; each script takes well under 20 s on 2 cores


def _gpt2_tokenizer():
    import transformers
    from transformers import GPT2TokenizerFast

    assets = resources.files("dind") / "assets" / "gpt2"
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 no longer reads the vocab and merges files given by path
        vocab = json.loads((assets / "encoder.json").read_text(encoding="utf-8"))
        lines = (assets / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
        return GPT2TokenizerFast(vocab=vocab, merges=[tuple(line.split(" ")) for line in lines if line])
    return GPT2TokenizerFast(vocab_file=str(assets / "encoder.json"), merges_file=str(assets / "vocab.bpe"))


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    """A random two-layer GPT-2 with the real GPT-2 tokenizer: loads offline like GPT-2 Large."""
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("judge")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=50257)
        GPT2LMHeadModel(config).save_pretrained(directory)
    _gpt2_tokenizer().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def micro_checkpoint(tmp_path_factory) -> Path:
    from dind.models import build, save_pretrained

    model = build("micro", init="random", generator=torch.Generator().manual_seed(0))
    return save_pretrained(model, tmp_path_factory.mktemp("micro"))


def _run(script: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 0, f"{script} exited {completed.returncode}:\n{completed.stderr[-3000:]}"
    return completed.stdout


TESTED = {
    "custom_remasker.py",
    "train_shakespeare.py",
    "score_samples.py",
    "entropy_remasker.py",
    "geometric_block_sizes.py",
}


def test_every_example_is_tested():
    assert {path.name for path in EXAMPLES.glob("*.py")} == TESTED


def test_custom_remasker():
    out = _run("custom_remasker.py", "--length", "64", "--seed", "1", "--prompt", "ROMEO:")
    assert "plan: 4 -> 32@0.25 -> L@0.5:span/32{unmasking=confidence_topk}" in out
    # 64 - BOS - 6 prompt bytes = 57 eligible: floor(0.25 * 57) then floor(0.5 * 57) remasked
    assert "before stage 2: 14 positions remasked" in out
    assert "before stage 3: 28 positions remasked" in out
    assert "total NFE" in out


def test_train_shakespeare(tmp_path):
    out_dir = tmp_path / "run"
    args = ("--steps", "2", "--length", "128", "--batch-size", "2", "--out", str(out_dir))
    out = _run("train_shakespeare.py", *args)
    assert "step  val NELBO (nats/byte)" in out
    assert "held-out text: '" in out and "held-out text: ''" not in out
    assert (out_dir / "metrics.jsonl").is_file()


def test_score_samples(micro_checkpoint, judge_dir):
    args = ("--model", str(micro_checkpoint), "--tokenizer", "bytes", "--judge", str(judge_dir))
    out = _run("score_samples.py", *args, "--plan", "4 -> 32@0.5", "--length", "32", "--num-samples", "2")
    assert "stage 1 draft: Gen PPL" in out
    assert "final: Gen PPL" in out
    assert "NFE per sample:" in out


def test_entropy_remasker_from_plan_text():
    out = _run("entropy_remasker.py", "--length", "32", "--plan", "4 -> 32@0.5:entropy")
    assert "plan: 4 -> 32@0.5:entropy" in out
    assert "stage 2: remasked per row [15, 15]" in out  # floor(0.5 * 31 generated positions)


def test_entropy_remasker_from_the_cli(tmp_path):
    plugin = str(EXAMPLES / "entropy_remasker.py")
    out = tmp_path / "samples.jsonl"
    command = [
        sys.executable,
        "-m",
        "dind",
        "--plugin",
        plugin,
        "sample",
        "--model",
        "micro",
        "--tokenizer",
        "bytes",
        "--length",
        "16",
        "--plan",
        "4 -> 16@0.5:entropy",
        "--out",
        str(out),
        "--no-progress",
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(out.read_text().splitlines()[0])["stages"][1]["remasked"] == 7  # floor(0.5 * 15)


def test_geometric_block_sizes_in_a_training_objective():
    from dind.models import build
    from dind.plugins import load_plugin
    from dind.training import Objective, sample_nelbo
    from dind.training.block_sizes import parse_block_sizes

    assert "geometric:4,256,0.5: support (4, 8, 16, 32, 64, 128, 256)" in _run("geometric_block_sizes.py")
    load_plugin(str(EXAMPLES / "geometric_block_sizes.py"))  # what `dind --plugin` does
    law = parse_block_sizes("geometric:4,16,0.5")  # objective.block_sizes=geometric:4,16,0.5
    assert law.support() == (4, 8, 16) and str(law) == "geometric:4,16,0.5"
    model = build("micro", init="random", generator=torch.Generator().manual_seed(0))
    clean = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    result = sample_nelbo(model, clean, Objective(block_sizes=law), low=1e-3, high=1.0,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.isfinite(result.loss)
