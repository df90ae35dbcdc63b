"""Bad inputs and faults of the ``dind`` command as a whole, ``dind sample``, ``dind demo`` and
``generate``/plan text (helper area: CLI, sampling entry points, plan text).

Each case is (label, action(tmp)); a CLI case returns the exit status, a library case raises.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from unittest import mock

DEVICE = ["--device", "cpu", "--no-progress"]


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def sample(tmp: Path, *extra: str, out: str | None = None) -> int:
    out = out if out is not None else str(tmp / "s.jsonl")
    return cli(
        [
            "sample",
            "--model",
            "micro",
            "--tokenizer",
            "bytes",
            "--plan",
            "4 -> 16@0.5",
            "--length",
            "16",
            "--out",
            out,
            *DEVICE,
            *extra,
        ]
    )


def demo(tmp: Path, *extra: str) -> int:
    return cli(["demo", "--length", "16", "--plan", "4 -> 16@0.5", "--out", str(tmp / "demo"), *extra])


def micro_checkpoint(tmp: Path) -> Path:
    import torch

    from dind.models import build, save_pretrained

    directory = tmp / "micro"
    save_pretrained(
        build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0), directory
    )
    return directory


def corrupt(tmp: Path, name: str, data: bytes) -> Path:
    directory = micro_checkpoint(tmp)
    (directory / name).write_bytes(data)
    (directory / "checksums.sha256").unlink(missing_ok=True)  # as from elsewhere: the parsers speak
    return directory


def existing(tmp: Path, name: str = "s.jsonl") -> Path:
    (tmp / name).write_text("earlier results\n")
    return tmp / name


def interrupt_in_loop(tmp: Path) -> int:
    import dind.sampling.block_sampler as block_sampler

    with mock.patch.object(block_sampler, "_fill_block", side_effect=KeyboardInterrupt):
        status = sample(tmp)
    assert list(tmp.iterdir()) == [], "Ctrl-C left a file"
    return status


def nan_model(tmp: Path, value: float) -> int:
    import dind.cli.sample as command

    load = command.load_model

    def poisoned(spec, device):
        model = load(spec, device)
        original = model.logits
        model.logits = lambda tokens, block_size=None: original(tokens, block_size=block_size).fill_(value)
        return model

    with mock.patch.object(command, "load_model", poisoned):
        return sample(tmp, "--plan", "L")


def disk_full(tmp: Path) -> int:
    import os

    with mock.patch.object(os, "fsync", side_effect=OSError(errno.ENOSPC, "No space left on device")):
        return sample(tmp)


def generate_with(**kwargs):
    import torch

    from dind.sampling import GenerateOptions, StagePlan, generate
    from dind.sampling.oracles import MarkovOracle

    oracle = MarkovOracle(torch.full((4,), 0.25), torch.full((4, 4), 0.25))  # vocab 5, MASK 4
    if "options" in kwargs:  # passed through as given (a wrong type is the case under test)
        options = kwargs.pop("options")
    else:
        from dind.models import DECODE_STEPS

        named = {key: kwargs.pop(key) for key in ("bos_id", "tracker", "unmasking") if key in kwargs}
        if "step_object" in kwargs:
            named["step"] = DECODE_STEPS.build(kwargs.pop("step_object"))
        options = GenerateOptions(**named)
    arguments = {"length": 16, "seed": 0, **kwargs}
    plan = arguments.pop("plan", StagePlan.parse("4 -> L@0.5"))
    plan = StagePlan.parse(plan) if isinstance(plan, str) and "{" in plan else plan  # text: the case
    return generate(oracle, plan, **arguments, options=options)


def parse(text: str, length: int | None = None):
    from dind.sampling.plan import StagePlan

    plan = StagePlan.parse(text)
    if length is not None:
        plan.validate(length)
    return plan


def plugin_file(tmp: Path, body: str) -> str:
    path = tmp / "my_plugin.py"
    path.write_text(body)
    return str(path)


CASES = [
    # the command line itself
    ("no subcommand", lambda tmp: cli([])),
    ("unknown subcommand 'smaple'", lambda tmp: cli(["smaple"])),
    ("unknown global option", lambda tmp: cli(["--verbose", "list"])),
    ("--threads 0", lambda tmp: cli(["--threads", "0", "list"])),
    ("--threads not a number, after the subcommand", lambda tmp: cli(["list", "--threads", "many"])),
    ("--plugin naming a missing module", lambda tmp: cli(["--plugin", "no_such_module_xyz", "list"])),
    ("--plugin naming a missing .py file", lambda tmp: cli(["--plugin", str(tmp / "nope.py"), "list"])),
    (
        "--plugin file with a syntax error",
        lambda tmp: cli(["--plugin", plugin_file(tmp, "def (:\n"), "list"]),
    ),
    (
        "--plugin file raising on import",
        lambda tmp: cli(["--plugin", plugin_file(tmp, "raise RuntimeError('x')\n"), "list"]),
    ),
    ("--plugin without a value", lambda tmp: cli(["list", "--plugin"])),
    # sample: numbers
    ("sample --length 0", lambda tmp: sample(tmp, "--length", "0")),
    ("sample --length -16", lambda tmp: sample(tmp, "--length", "-16")),
    ("sample --length abc", lambda tmp: sample(tmp, "--length", "abc")),
    ("sample --length 1.5", lambda tmp: sample(tmp, "--length", "1.5")),
    ("sample --batch-size 0", lambda tmp: sample(tmp, "--batch-size", "0")),
    ("sample --seed -1", lambda tmp: sample(tmp, "--seed", "-1")),
    ("sample --seed 2**64", lambda tmp: sample(tmp, "--seed", str(2**64))),
    ("sample --seed 1e3", lambda tmp: sample(tmp, "--seed", "1e3")),
    ("sample --steps 0", lambda tmp: sample(tmp, "--steps", "0")),
    ("sample --top-p 0", lambda tmp: sample(tmp, "--top-p", "0")),
    ("sample --top-p 1.5", lambda tmp: sample(tmp, "--top-p", "1.5")),
    ("sample --top-p nan", lambda tmp: sample(tmp, "--top-p", "nan")),
    ("sample --temperature 0", lambda tmp: sample(tmp, "--temperature", "0")),
    ("sample --temperature inf", lambda tmp: sample(tmp, "--temperature", "inf")),
    ("sample --length 17 (block 4 does not divide)", lambda tmp: sample(tmp, "--length", "17")),
    ("sample --length 2 (block 4 > length)", lambda tmp: sample(tmp, "--length", "2")),
    # sample: names and plan text
    ("sample --tracker nope", lambda tmp: sample(tmp, "--tracker", "nope")),
    ("sample --unmasking nope", lambda tmp: sample(tmp, "--unmasking", "nope")),
    ("sample --tokenizer nope", lambda tmp: sample(tmp, "--tokenizer", "nope")),
    ("sample --tokenizer gpt2 on a bytes model", lambda tmp: sample(tmp, "--tokenizer", "gpt2")),
    ("sample --model unknown preset", lambda tmp: sample(tmp, "--model", "nope-preset")),
    ("sample --plan ''", lambda tmp: sample(tmp, "--plan", "")),
    ("sample --plan '4 ->'", lambda tmp: sample(tmp, "--plan", "4 ->")),
    ("sample --plan '4 -> 16@1.5'", lambda tmp: sample(tmp, "--plan", "4 -> 16@1.5")),
    ("sample --plan '4@0.5' (stage 1 remasks)", lambda tmp: sample(tmp, "--plan", "4@0.5")),
    ("sample --plan '0'", lambda tmp: sample(tmp, "--plan", "0")),
    ("sample --plan ':nope remasker'", lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5:nope")),
    ("sample --plan unknown option {beam=2}", lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5{beam=2}")),
    ("sample --plan duplicate option", lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5{top_p=0.9,top_p=0.8}")),
    (
        "sample --plan duplicate unmasking",
        lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5{unmasking=first_hitting,unmasking=ancestral}"),
    ),
    ("sample --plan ratio rounds to 0 positions", lambda tmp: sample(tmp, "--plan", "4 -> 16@0.01")),
    ("sample --plan top_p=abc", lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5{top_p=abc}")),
    (
        "sample --plan unknown unmasking rule",
        lambda tmp: sample(tmp, "--plan", "4 -> 16@0.5{unmasking=nope}"),
    ),
    # sample: prompt
    ("sample --prompt longer than --length", lambda tmp: sample(tmp, "--prompt", "x" * 40)),
    ("sample --prompt filling every position", lambda tmp: sample(tmp, "--prompt", "x" * 15)),
    # sample: models and devices
    ("sample --model missing directory", lambda tmp: sample(tmp, "--model", str(tmp / "nope"))),
    ("sample --model a file", lambda tmp: sample(tmp, "--model", str(existing(tmp, "f.txt")))),
    (
        "sample --model empty directory",
        lambda tmp: (tmp / "empty").mkdir() or sample(tmp, "--model", str(tmp / "empty")),
    ),
    (
        "sample --model corrupt config.json",
        lambda tmp: sample(tmp, "--model", str(corrupt(tmp, "config.json", b"{not json"))),
    ),
    (
        "sample --model config.json a list",
        lambda tmp: sample(tmp, "--model", str(corrupt(tmp, "config.json", b"[1, 2]"))),
    ),
    (
        "sample --model truncated safetensors",
        lambda tmp: sample(tmp, "--model", str(corrupt(tmp, "model.safetensors", b"\x10\x00"))),
    ),
    ("sample --device nodevice", lambda tmp: sample(tmp, "--device", "nodevice")),
    ("sample --device cuda:7", lambda tmp: sample(tmp, "--device", "cuda:7")),
    ("sample --step-mode fast", lambda tmp: sample(tmp, "--step-mode", "fast")),
    # sample: outputs and faults
    ("sample --out exists (no --overwrite)", lambda tmp: sample(tmp, out=str(existing(tmp)))),
    ("sample --out is a directory", lambda tmp: sample(tmp, out=str(tmp))),
    ("sample --out under a file", lambda tmp: sample(tmp, out=str(existing(tmp, "f") / "s.jsonl"))),
    ("sample Ctrl-C inside the sampling loop", interrupt_in_loop),
    ("sample NaN logits", lambda tmp: nan_model(tmp, float("nan"))),
    ("sample +inf logits", lambda tmp: nan_model(tmp, float("inf"))),
    ("sample -inf logits everywhere", lambda tmp: nan_model(tmp, float("-inf"))),
    ("sample disk full while writing", disk_full),
    (
        "sample --overwrite of an existing file (accepted)",
        lambda tmp: sample(tmp, "--overwrite", out=str(existing(tmp))),
    ),
    # demo
    ("demo --length 0", lambda tmp: demo(tmp, "--length", "0")),
    ("demo --seed -5", lambda tmp: demo(tmp, "--seed", "-5")),
    ("demo --plan 'x'", lambda tmp: cli(["demo", "--plan", "x", "--out", str(tmp / "d")])),
    (
        "demo --plan ratio rounds to 0 positions",
        lambda tmp: cli(["demo", "--length", "16", "--plan", "4 -> 16@0.05", "--out", str(tmp / "d")]),
    ),
    (
        "demo --out exists (trace.json)",
        lambda tmp: (tmp / "demo").mkdir() or (tmp / "demo" / "trace.json").write_text("{}") and demo(tmp),
    ),
    ("demo --out is a file", lambda tmp: existing(tmp, "demo") and demo(tmp)),
    ("demo --checkpoint missing", lambda tmp: demo(tmp, "--checkpoint", str(tmp / "nope"))),
    (
        "demo --checkpoint with the wrong vocabulary",
        lambda tmp: demo(tmp, "--checkpoint", str(gpt2_vocab_checkpoint(tmp))),
    ),
    ("demo --device nodevice", lambda tmp: demo(tmp, "--device", "nodevice")),
    ("demo --prompt longer than --length", lambda tmp: demo(tmp, "--prompt", "ROMEO: " * 5)),
    # other subcommands: the generic handler
    ("train --config missing file", lambda tmp: cli(["train", "--config", str(tmp / "nope.yaml")])),
    ("train --config a directory", lambda tmp: cli(["train", "--config", str(tmp)])),
    (
        "train --config corrupt YAML",
        lambda tmp: (
            (tmp / "c.yaml").write_text("a: [1,\n") and cli(["train", "--config", str(tmp / "c.yaml")])
        ),
    ),
    ("train bad override 'steps'", lambda tmp: cli(["train", "--print-config", "steps"])),
    ("train override steps=-3", lambda tmp: cli(["train", "--print-config", "steps=-3"])),
    ("train override unknown key", lambda tmp: cli(["train", "--print-config", "nosuchkey=1"])),
    ("eval missing samples file", lambda tmp: cli(["eval", str(tmp / "nope.jsonl"), "--judge", str(tmp)])),
    ("eval samples is a directory", lambda tmp: cli(["eval", str(tmp), "--judge", str(tmp)])),
    ("eval without --judge", lambda tmp: cli(["eval", str(tmp / "s.jsonl")])),
    (
        "sweep --model unknown preset",
        lambda tmp: cli(["sweep", "--model", "nope", "--judge", str(tmp), "--out", str(tmp / "o")]),
    ),
    (
        "sweep --block-sizes abc",
        lambda tmp: cli(
            [
                "sweep",
                "--model",
                "micro",
                "--judge",
                str(tmp),
                "--block-sizes",
                "abc",
                "--out",
                str(tmp / "o"),
            ]
        ),
    ),
    ("list with a stray argument", lambda tmp: cli(["list", "extra"])),
    # library: generate() arguments
    ("generate prompt with the MASK id", lambda tmp: generate_with(prompt=[1, 4])),
    ("generate prompt with a negative id", lambda tmp: generate_with(prompt=[1, -1])),
    ("generate prompt id outside the vocabulary", lambda tmp: generate_with(prompt=[1, 99])),
    ("generate float prompt", lambda tmp: generate_with(prompt=[1.0, 2.0])),
    ("generate ragged prompt", lambda tmp: generate_with(prompt=[[1, 2], [1]], batch_size=2)),
    ("generate 3-d prompt", lambda tmp: generate_with(prompt=[[[1]]])),
    ("generate str prompt", lambda tmp: generate_with(prompt="hello")),
    ("generate prompt longer than length", lambda tmp: generate_with(prompt=[1] * 20)),
    ("generate bos_id == mask_id", lambda tmp: generate_with(bos_id=4)),
    ("generate seed -1", lambda tmp: generate_with(seed=-1)),
    ("generate seed 2**64", lambda tmp: generate_with(seed=2**64)),
    ("generate seed True", lambda tmp: generate_with(seed=True)),
    ("generate seed 1.5", lambda tmp: generate_with(seed=1.5)),
    ("generate seed '3'", lambda tmp: generate_with(seed="3")),
    ("generate length 0", lambda tmp: generate_with(length=0)),
    ("generate batch_size '2'", lambda tmp: generate_with(batch_size="2")),
    ("generate plan as text", lambda tmp: generate_with(plan="4 -> L@0.5")),
    ("generate tracker as a name", lambda tmp: generate_with(tracker="snapshot")),
    # library: plan text
    (
        "parse '4 -> 32@0.5{unmasking=a,unmasking=b}'",
        lambda tmp: parse("4 -> 32@0.5{unmasking=a,unmasking=b}"),
    ),
    ("validate '4 -> 32@0.001' at length 256", lambda tmp: parse("4 -> 32@0.001", 256)),
    ("parse '4 -> 32@-0.5'", lambda tmp: parse("4 -> 32@-0.5")),
    ("parse '4 -> 32@0.5@0.5'", lambda tmp: parse("4 -> 32@0.5@0.5")),
    ("parse '4 -> L{temperature=0}'", lambda tmp: parse("4 -> L{temperature=0}")),
    # library: the options object, decode steps, refine caches, component arguments, trained length
    ("GenerateOptions(step='static')", lambda tmp: options_with(step="static")),
    ("GenerateOptions(step=3)", lambda tmp: options_with(step=3)),
    ("GenerateOptions(bos_id=-1)", lambda tmp: options_with(bos_id=-1)),
    ("generate options as a dict", lambda tmp: generate_with(options={"bos_id": 0})),
    ("generate length beyond the model's model_length", lambda tmp: generate_micro(length=256)),
    ("static step on a non-DiT denoiser", lambda tmp: generate_with(step_object="static")),
    ("skeleton cache on a non-DiT denoiser", lambda tmp: generate_with(plan="4 -> L@0.5{cache=skeleton}")),
    ("validate a cache on a block stage", lambda tmp: parse("4 -> 16@0.5{cache=skeleton}", 32)),
    ("parse ':posthoc_masked(chunks=0)'", lambda tmp: parse("4 -> L@0.5:posthoc_masked(chunks=0)")),
    ("parse ':posthoc_masked(8)'", lambda tmp: parse("4 -> L@0.5:posthoc_masked(8)")),
    ("parse ':posthoc_masked(chunk=8)'", lambda tmp: parse("4 -> L@0.5:posthoc_masked(chunk=8)")),
    ("parse a printed <repr> component", lambda tmp: parse("4 -> L@0.5:<Custom()>")),
    ("parse '{cache=skeleton(every=0)}'", lambda tmp: parse("4 -> L@0.5{cache=skeleton(every=0)}")),
    ("truncate_at_eos(result, None)", lambda tmp: truncate_with(None)),
    ("redraw_low_entropy max_retries -1", lambda tmp: redraw_with(-1)),
    # variable-length sampling (issue 21.3)
    ("--stop-min-entropy -1", lambda tmp: sample(tmp, "--variable-length", "--stop-min-entropy", "-1")),
    ("--stop-min-entropy nan", lambda tmp: sample(tmp, "--variable-length", "--stop-min-entropy", "nan")),
    ("--stop-window 0", lambda tmp: sample(tmp, "--variable-length", "--stop-window", "0")),
    (
        "--variable-length with --reject-low-entropy",
        lambda tmp: sample(tmp, "--variable-length", "--reject-low-entropy"),
    ),
    ("VariableLength(eos_id=-1)", lambda tmp: variable_length(eos_id=-1)),
    ("VariableLength(min_entropy=inf)", lambda tmp: variable_length(eos_id=256, min_entropy=float("inf"))),
    ("GenerateOptions(stop='eos')", lambda tmp: options_with_stop("eos")),
    ("continue_plan with options.stop", lambda tmp: continue_with_stop()),
]


def options_with(**kwargs):
    from dind.sampling import GenerateOptions

    return GenerateOptions(**kwargs)


def generate_micro(**kwargs):
    import dind

    return dind.generate(dind.load("micro"), dind.StagePlan.parse("4 -> L@0.5"), seed=0, **kwargs)


def truncate_with(eos_id):
    from dind.sampling import truncate_at_eos

    return truncate_at_eos(generate_with(), eos_id)


def redraw_with(max_retries: int):
    from dind.eval import redraw_low_entropy

    result = generate_with()
    return redraw_low_entropy(result_model(), result_plan(), result, max_retries=max_retries)


def result_model():
    import torch

    from dind.sampling.oracles import MarkovOracle

    return MarkovOracle(torch.full((4,), 0.25), torch.full((4, 4), 0.25))


def result_plan():
    from dind.sampling import StagePlan

    return StagePlan.parse("4 -> L@0.5")


def variable_length(**fields):
    from dind.sampling.stopping import VariableLength

    return VariableLength(**fields)


def options_with_stop(stop):
    from dind.sampling import GenerateOptions

    return GenerateOptions(stop=stop)


def continue_with_stop():
    import torch

    from dind import models
    from dind.sampling import GenerateOptions, StagePlan, continue_plan, generate
    from dind.sampling.stopping import VariableLength

    model = models.build(
        "micro", init="random", dropout=0.0, generator=torch.Generator().manual_seed(0)
    ).eval()
    draft = generate(model, StagePlan.parse("4"), length=16, options=GenerateOptions(bos_id=256))
    stop = GenerateOptions(bos_id=256, stop=VariableLength(256))
    return continue_plan(model, StagePlan.parse("4 -> L@0.5"), draft, options=stop)


def gpt2_vocab_checkpoint(tmp: Path) -> Path:
    directory = micro_checkpoint(tmp)
    config = json.loads((directory / "config.json").read_text())
    config["vocab_size"] = 50258
    (directory / "config.json").write_text(json.dumps(config))
    return directory


if __name__ == "__main__":  # python benchmarks/bad_inputs/cli_sampling.py: this module's table only
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bad_inputs import run_case  # the runner module (benchmarks/bad_inputs.py)

    for label, action in CASES:
        print(label, "|", *run_case(action))
