"""Every shell command of the README and the guide: run as written (offline, on the CPU, in a
scratch directory holding the repository's configs/ and data/), checked without its long work
(``dind train ... --print-config``: the config and overrides resolve), marked slow, or skipped with
the reason. A command added to either document must be listed here, so none goes stale unseen."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/guide.md")
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)

RUN, SLOW, CHECK = "run", "slow", "check"  # as written; as written, -m slow; with --print-config
MICRO_RUN = (  # a 1-step micro run in runs/mine: what `dind sample --model runs/mine` reads
    "dind train --config configs/tiny-shakespeare.yaml steps=1 out_dir=runs/mine eval_every=null "
    "save_every=null progress=false data.length=64 objective.block_sizes.global_size=64 "
    "'model.preset={name: micro, model_length: 64}'"
)
SAMPLES = "dind sample --model demo --length 64 --batch-size 4 --out samples.jsonl"
GPU_110M = "skip: the 110M BD3-LM checkpoint (and a GPU for its recipe) is not shipped"
HOURS = "skip: needs a finished run of configs/tiny-shakespeare.yaml (1000 steps: about 30 min on 2 cores)"

# command (as shlex reads it: comments dropped, quotes resolved, joined by spaces) -> what to do;
# an optional second item is a command to run first in the same directory
COMMANDS: dict[str, tuple[str, ...]] = {
    # README.md
    "bash scripts/demo.sh": ("skip: sets up .venv (pip) and then runs `dind demo`, run below",),
    "bash scripts/test.sh": ("skip: runs this test suite",),
    "dind list": (RUN,),
    "dind demo --plan 4 -> 32@0.25 -> 256@0.5": (SLOW,),
    SAMPLES: (RUN,),
    "dind eval samples.jsonl --judge judge-kn-shakespeare": (RUN, SAMPLES),
    "dind nelbo --model demo --data data/shakespeare/henry_vi_part_2.txt --block-size 4 --block-size L "
    "--num-batches 2": (RUN,),
    "dind train --config configs/tiny-shakespeare.yaml steps=2000 out_dir=runs/mine "
    "objective.block_sizes=bimodal:4,256,0.1 loggers=[tensorboard]": (CHECK,),
    "dind sample --model runs/mine --out mine.jsonl": (SLOW, MICRO_RUN),
    "dind train --config configs/bd3lm-110m-finetune-owt.yaml --init /path/to/bd3lm-owt-block_size4": (
        CHECK,
    ),
    "dind sweep --model /path/to/bd3lm-owt-block_size4 --judge /path/to/gpt2-large": (GPU_110M,),
    "dind --threads 1 reproduce --quick": (SLOW,),
    # docs/guide.md
    "bash scripts/bootstrap.sh": ("skip: installs packages (pip)",),
    "source .venv/bin/activate": ("skip: changes the calling shell only",),
    "dind sample --model demo --plan 4 -> L@0.5 --length 128 --batch-size 4 --seed 0 --out samples.jsonl": (
        SLOW,
    ),
    "dind sample --model runs/tiny-shakespeare --plan 4 -> 256@0.5 --length 256 --out run.jsonl": (HOURS,),
    "dind sample --model /data/bd3lm-owt-block_size4 --plan 4 -> 1024@0.5 --length 1024 --top-p 0.9 "
    "--batch-size 8 --out samples.jsonl": (GPU_110M,),
    "dind demo": (SLOW,),
    "dind train --config configs/tiny-shakespeare.yaml": (CHECK,),
    "dind train --config configs/tiny-shakespeare.yaml steps=200 optim.lr=1e-3 --out-dir runs/quick": (
        CHECK,
    ),
    "dind train --config configs/tiny-shakespeare.yaml --print-config": (RUN,),
    "dind train --config configs/tiny-shakespeare.yaml objective.block_sizes=fixed:4": (CHECK,),
    "dind train --config configs/tiny-shakespeare.yaml objective.block_sizes.global_probability=0.25": (
        CHECK,
    ),
    "dind train --config configs/tiny-shakespeare.yaml variance.enabled=true variance.batches=8": (CHECK,),
    "dind train --config configs/tiny-shakespeare.yaml --resume": (CHECK,),
    "dind train --config configs/tiny-shakespeare.yaml steps=2000 --resume runs/tiny-shakespeare": (CHECK,),
    "dind train --config runs/tiny-shakespeare/config.yaml --resume "
    "runs/tiny-shakespeare/checkpoints/step-0001000": (HOURS,),
    "dind train --resume runs/tiny-shakespeare steps=4000": (HOURS,),
    "dind train --config configs/tiny-shakespeare.yaml loggers=[tensorboard]": (CHECK,),
    "dind train --config configs/tiny-shakespeare.yaml loggers=[tensorboard, {name: wandb, project: dind}]": (
        CHECK,
    ),
    "tensorboard --logdir runs/tiny-shakespeare/tensorboard": ("skip: starts a web server",),
    "torchrun --nproc_per_node=8 -m dind train --config configs/bd3lm-110m-finetune-owt.yaml "
    "distributed=ddp": ("skip: 8 GPUs",),
    "torchrun --nproc_per_node=8 -m dind train --config configs/bd3lm-110m-finetune-owt.yaml "
    "distributed=fsdp": ("skip: 8 GPUs",),
    "torchrun --nproc_per_node=8 -m dind train --config configs/bd3lm-110m-finetune-owt.yaml "
    "--init /data/bd3lm-owt-block_size1024-pretrain": ("skip: 8 GPUs",),
    "dind train --config configs/bd3lm-110m-finetune-owt.yaml --init /data/bd3lm-owt-block_size1024-pretrain "
    "distributed=none": (CHECK,),
    "dind train --config configs/bd3lm-110m-finetune-owt.yaml --init /data/bd3lm-owt-block_size1024-pretrain "
    "distributed=none data.corpus={name: text, paths: [/data/owt], pattern: '*.jsonl'}": (CHECK,),
    "dind sample --model runs/bd3lm-110m-finetune-owt/checkpoints/latest --plan 4 -> 1024@0.5 --length 1024 "
    "--top-p 0.9 --batch-size 16 --out samples.jsonl": (GPU_110M,),
    "dind eval samples.jsonl --judge /data/gpt2-large --max-length 1024": (
        "skip: GPT-2 Large is not shipped",
    ),
    "dind sweep --model /data/bd3lm-owt-block_size4 --judge /data/gpt2-large --block-sizes 4,16,64,256,1024 "
    "--ratios 0.1,0.25,0.5,0.75,0.9 --num-samples 300 --out sweeps/owt": (GPU_110M,),
    "dind reproduce --quick": ("skip: the README's `dind --threads 1 reproduce --quick` runs it (slow)",),
    "dind reproduce --model runs/a --model runs/b --judge /data/gpt2-large --num-samples 64 --out repro": (
        "skip: GPT-2 Large and trained runs are not shipped",
    ),
    "dind --threads 1 nelbo --model demo --data data/shakespeare/henry_vi_part_2.txt --block-size 4 "
    "--block-size L --length 256 --batch-size 8 --num-batches 8 --out nelbo.json": (SLOW,),
    # --compare itself: tests/cli/test_nelbo.py
    "dind --threads 1 nelbo --model runs/mine --data data/shakespeare/henry_vi_part_2.txt --block-size 4 "
    "--block-size L --length 256 --batch-size 8 --num-batches 8 --compare nelbo.json": (HOURS,),
}


def commands(document: str) -> dict[str, list[str]]:
    """Each command of the document's ```bash blocks (continuation lines joined, comments dropped):
    its key (the words joined by spaces) -> its words."""
    found = {}
    for block in BLOCK.findall((ROOT / document).read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found[" ".join(words)] = words
    return found


DOCUMENTED = {key: words for document in reversed(DOCS) for key, words in commands(document).items()}
WHERE = {key: document for document in reversed(DOCS) for key in commands(document)}  # the first one


def test_every_documented_command_is_listed_and_every_listed_one_documented():
    assert DOCUMENTED, "no ```bash blocks found"
    assert [command for command in DOCUMENTED if command not in COMMANDS] == []
    assert [command for command in COMMANDS if command not in DOCUMENTED] == []
    assert all(entry[0] in (RUN, SLOW, CHECK) or entry[0].startswith("skip: ") for entry in COMMANDS.values())


def test_the_dind_entry_point_runs_a_documented_command():
    # the installed console script, in a fresh process; the other commands run through dind.cli.main,
    # the function it calls, in this process (a fresh interpreter per command would cost ~3 s each)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dind")), *DOCUMENTED["dind list"][1:]], capture_output=True,
        text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert (
        done.returncode == 0
        and "shipped models (--model, dind.load): tiny-shakespeare (= demo)" in done.stdout
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """Per document, a working directory with the repository's configs/ and data/ (its commands run
    there in order, as a reader would run them), and what has run there."""
    directories: dict[str, tuple[Path, set[str]]] = {}

    def directory(document: str) -> tuple[Path, set[str]]:
        if document not in directories:
            path = tmp_path_factory.mktemp("doc-commands")
            for name in ("configs", "data"):
                (path / name).symlink_to(ROOT / name)
            directories[document] = (path, set())
        return directories[document]

    return directory


def _run(words: list[str], directory: Path, monkeypatch, capsys) -> None:
    """``dind WORDS`` through ``dind.cli.main`` in ``directory``, offline, one torch thread (then
    restored)."""
    import torch

    from dind.cli import main

    assert words[0] == "dind", words
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1: CI's cores are shared with other test processes
    with monkeypatch.context() as patch:
        patch.chdir(directory)
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            patch.setenv(name, "1")
        try:
            status = main(words[1:])
        finally:
            torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert status == 0, f"{' '.join(words)}\n{captured.out[-2000:]}\n{captured.err[-3000:]}"


def _cases(kind: str) -> list:
    marks = [pytest.mark.slow] if kind == SLOW else []
    return [pytest.param(c, id=c[:60], marks=marks) for c in DOCUMENTED if COMMANDS.get(c, ("",))[0] == kind]


@pytest.mark.parametrize("command", _cases(RUN) + _cases(SLOW))
def test_the_command_runs_as_written(command, scratch, monkeypatch, capsys):
    directory, done = scratch(WHERE[command])
    entry = COMMANDS[command]
    for first in entry[1:]:
        if first not in done:
            _run(DOCUMENTED.get(first) or shlex.split(first), directory, monkeypatch, capsys)
            done.add(first)
    _run(DOCUMENTED[command], directory, monkeypatch, capsys)
    done.add(command)


@pytest.mark.parametrize("command", _cases(CHECK))
def test_the_training_command_resolves_its_config(command, scratch, monkeypatch, capsys):
    # --print-config: the config file, the overrides and --init/--out-dir/--resume are read and
    # checked (every component name and option), then it exits before any training
    _run([*DOCUMENTED[command], "--print-config"], scratch(WHERE[command])[0], monkeypatch, capsys)
