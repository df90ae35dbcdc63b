"""Names of shipped assets, training run directories and the thread note: wrong kinds, typos,
bare names that are no asset, run directories without a checkpoint, an oversubscribed CPU."""

from __future__ import annotations

from pathlib import Path


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def _samples(tmp: Path) -> Path:
    path = tmp / "samples.jsonl"
    path.write_text('{"text": "To be, or not to be"}\n')
    return path


def _empty_run(tmp: Path) -> Path:
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yaml").write_text("steps: 10\n")
    return tmp / "run"


def _load(name):
    import dind

    return dind.load(name)


def _judge(name):
    from dind.eval import load_judge

    return load_judge(name)


def _oversubscribed(tmp: Path):
    import os

    import torch

    import dind.cli as command

    busy, threads = command.busy_cores, torch.get_num_threads()
    chosen = os.environ.pop("OMP_NUM_THREADS", None)  # set: the user chose, and no note is due
    command.busy_cores = lambda: 3.5
    torch.set_num_threads(2)
    try:
        return cli(["train", "--print-config"])  # the config on stdout; the note is all of stderr
    finally:
        command.busy_cores = busy
        torch.set_num_threads(threads)
        if chosen is not None:
            os.environ["OMP_NUM_THREADS"] = chosen


SAMPLE = ["--length", "16", "--no-progress", "--device", "cpu"]


def sample(model):
    return lambda tmp: cli(["sample", "--model", model(tmp) if callable(model) else model, *SAMPLE])


def evaluate(judge):
    return lambda tmp: cli(["eval", str(_samples(tmp)), "--judge", judge])


CASES = [
    ("--model dem (a typo of demo)", sample("dem")),
    ("--model judge-shakespeare (a judge)", sample("judge-shakespeare")),
    ("--model a run dir without a checkpoint", sample(lambda tmp: str(_empty_run(tmp)))),
    ("demo --model judge-kn-shakespeare",
     lambda tmp: cli(["demo", "--model", "judge-kn-shakespeare", "--out", str(tmp)])),
    ("nelbo --model judge-shakespeare",
     lambda tmp: cli(["nelbo", "--model", "judge-shakespeare", "--data", str(_samples(tmp))])),
    ("eval --judge demo (a model)", evaluate("demo")),
    ("eval --judge gpt2-large (a bare name, no hub)", evaluate("gpt2-large")),
    ("eval --judge judge-shakesper (a typo)", evaluate("judge-shakesper")),
    ("dind.load('judge-kn-shakespeare')", lambda tmp: _load("judge-kn-shakespeare")),
    ("dind.load('tiny_shakespeare') (underscore)", lambda tmp: _load("tiny_shakespeare")),
    ("dind.load(run dir without a checkpoint)", lambda tmp: _load(_empty_run(tmp))),
    ("load_judge('demo')", lambda tmp: _judge("demo")),
    ("load_judge('judge')", lambda tmp: _judge("judge")),
    ("oversubscribed CPU: load 3.5 on 2 cores, 2 threads (a note, not an error)", _oversubscribed),
]  # fmt: skip
