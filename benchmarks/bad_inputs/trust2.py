"""Bad inputs and faults of issue 19 ("Trust, round 2"): silent wrong results (plugins that exit, a
model in training mode, a judge with non-finite losses, ratios that underflow, zero or negative list
options) and corrupted weights.

Each case is (label, action(tmp)); a CLI case returns the exit status, a library case raises.
"""

from __future__ import annotations

from pathlib import Path


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def plugin(tmp: Path, body: str) -> int:
    path = tmp / "plugin_under_test.py"
    path.write_text(body)
    return cli(["--plugin", str(path), "list"])


def train_mode_generate() -> None:
    import torch

    from dind.models import build
    from dind.sampling import StagePlan, generate

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.1).train()
    generate(model, StagePlan.parse("4"), length=8, seed=0)


def nan_judge_report() -> None:
    import torch

    from dind.eval.genppl import report_from_nll

    report_from_nll(torch.tensor([1.0, float("nan")], dtype=torch.float64), torch.tensor([2, 2]), [[1], [2]])


def parse(text: str) -> None:
    from dind.sampling import StagePlan

    StagePlan.parse(text)


def sweep(*extra: str) -> int:
    return cli(["sweep", "--model", "micro", "--judge", "judge-shakespeare", "--device", "cpu", *extra])


def saved_micro(tmp: Path) -> Path:
    import torch

    from dind.models import build, save_pretrained

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0)
    return save_pretrained(model, tmp / "micro")


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def load_flipped(tmp: Path) -> None:
    import dind

    directory = saved_micro(tmp)
    flip_last_byte(directory / "model.safetensors")
    dind.load(directory)


def sample_flipped(tmp: Path) -> int:
    directory = saved_micro(tmp)
    flip_last_byte(directory / "model.safetensors")
    argv = ["sample", "--model", str(directory), "--tokenizer", "bytes", "--plan", "4", "--length", "8"]
    return cli([*argv, "--out", str(tmp / "s.jsonl"), "--device", "cpu", "--no-progress"])


def flipped_trainer_state(tmp: Path) -> None:
    import torch

    from dind.models import build
    from dind.training.checkpointing import read_trainer_state, write_checkpoint

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0)
    directory = write_checkpoint(
        tmp / "latest", export_model=model, trainer_state={"step": 1}, config_yaml=None
    )
    torch.save({"step": 2}, directory / "trainer_state.pt")
    read_trainer_state(directory)


def bad_manifest(tmp: Path) -> None:
    import dind

    directory = saved_micro(tmp)
    (directory / "checksums.sha256").write_text("garbage\n")
    dind.load(directory)


def load_preset(**overrides) -> None:
    import dind

    dind.load("micro", **overrides)


def config_json_field(tmp: Path, field: str, value: int) -> None:
    import json

    import dind

    directory = saved_micro(tmp)
    config = json.loads((directory / "config.json").read_text())
    config[field] = value
    (directory / "config.json").write_text(json.dumps(config))
    dind.load(directory)


def generate_sizes(**sizes) -> None:
    import dind
    from dind.sampling import StagePlan, generate

    generate(dind.load("micro", dropout=0.0), StagePlan.parse("4"), **{"length": 8, **sizes})


def train_config(tmp: Path, text: str) -> int:
    path = tmp / "bad.yaml"
    path.write_text(text)
    return cli(["train", "--config", str(path), "--print-config"])


LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)


def train_with_corpus(data: bytes, *extra: str):
    def action(tmp: Path) -> int:
        from bad_inputs.training import _base

        argv = ["train", *_base(tmp), *extra]  # _base writes a good corpus: replaced here
        (tmp / "corpus.txt").write_bytes(data)
        return cli(argv)

    return action


def resume_other_shape(tmp: Path) -> int:
    from bad_inputs.training import _base

    cli(["train", *_base(tmp)])
    return cli(["train", *_base(tmp), "model.options={n_blocks: 3}", "--resume", str(tmp / "run")])


def trainer_state_bytes(data: bytes):
    def action(tmp: Path) -> None:
        from dind.training.checkpointing import read_trainer_state

        (tmp / "trainer_state.pt").write_bytes(data)
        read_trainer_state(tmp)

    return action


def sample_to(tmp: Path, out: Path, *extra: str) -> int:
    argv = ["sample", "--model", "micro", "--tokenizer", "bytes", "--plan", "4", "--length", "8"]
    return cli([*argv, "--out", str(out), "--device", "cpu", "--no-progress", *extra])


def sample_through_symlink(tmp: Path) -> int:
    victim = tmp / "another-run.jsonl"
    victim.write_text("another run's samples\n")
    (tmp / "out.jsonl").symlink_to(victim)
    status = sample_to(tmp, tmp / "out.jsonl", "--overwrite")
    if victim.read_text() != "another run's samples\n":
        raise AssertionError("the symlink's target was written")
    return status


def sample_to_fifo(tmp: Path) -> int:
    import os

    os.mkfifo(tmp / "pipe")
    return sample_to(tmp, tmp / "pipe", "--overwrite")


CASES = [
    ("--plugin that calls sys.exit(0) at import", lambda tmp: plugin(tmp, "import sys\nsys.exit(0)\n")),
    ("--plugin that calls sys.exit('bye')", lambda tmp: plugin(tmp, "raise SystemExit('bye')\n")),
    (
        "--plugin that raises a BaseException subclass",
        lambda tmp: plugin(tmp, "class Halt(BaseException):\n    pass\nraise Halt('stop')\n"),
    ),
    (
        "SIGTERM while a command runs (a plugin sends it)",
        lambda tmp: plugin(tmp, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"),
    ),
    ("--plugin DIR (a directory)", lambda tmp: cli(["--plugin", str(tmp) + "/", "list"])),
    ("generate with a model in train() mode (dropout 0.1)", lambda tmp: train_mode_generate()),
    ("Gen PPL report of a judge with a NaN loss", lambda tmp: nan_judge_report()),
    ("parse '4 -> L@1e-400' (ratio underflows to 0)", lambda tmp: parse("4 -> L@1e-400")),
    ("parse '4 -> L@0.5e-330'", lambda tmp: parse("4 -> L@0.5e-330")),
    ("sweep --block-sizes 4,0", lambda tmp: sweep("--block-sizes", "4,0")),
    ("sweep --block-sizes 4,-16", lambda tmp: sweep("--block-sizes", "4,-16")),
    ("sweep --ratios 0.5,1e-400", lambda tmp: sweep("--ratios", "0.5,1e-400")),
    ("sweep --ratios 1.5", lambda tmp: sweep("--ratios", "1.5")),
    ("sweep --anchor-ratio -1", lambda tmp: sweep("--anchor-ratio", "-1")),
    ("sweep --anchor-ratio nan", lambda tmp: sweep("--anchor-ratio", "nan")),
    ("dind.load of a checkpoint with one flipped weight bit", load_flipped),
    ("sample --model DIR with one flipped weight bit", sample_flipped),
    ("trainer_state.pt rewritten after the save", flipped_trainer_state),
    ("checksums.sha256 that is not a manifest", bad_manifest),
    ("dind.load('micro', hidden_dim=10**9)", lambda tmp: load_preset(hidden_dim=10**9)),
    ("dind.load('micro', n_blocks=10**6)", lambda tmp: load_preset(n_blocks=10**6)),
    ("dind.load('micro', n_heads=4096)", lambda tmp: load_preset(n_heads=4096)),
    ("dind.load('micro', vocab_size=10**5000)", lambda tmp: load_preset(vocab_size=10**5000)),
    (
        "dind.load('micro', hidden_dim=65536, n_heads=512): more than free memory",
        lambda tmp: load_preset(hidden_dim=65536, n_heads=512),
    ),
    ("config.json hidden_dim 10**9", lambda tmp: config_json_field(tmp, "hidden_dim", 10**9)),
    ("config.json vocab_size 2**40", lambda tmp: config_json_field(tmp, "vocab_size", 2**40)),
    ("generate length 2**30", lambda tmp: generate_sizes(length=2**30)),
    ("generate batch_size 2**30", lambda tmp: generate_sizes(batch_size=2**30)),
    ("generate batch_size 65536 x length 65536", lambda tmp: generate_sizes(batch_size=2**16, length=2**16)),
    ("plan '4/10000000000' (steps per block)", lambda tmp: parse("4/10000000000")),
    ("--threads 100000", lambda tmp: cli(["--threads", "100000", "list"])),
    ("train --config: YAML alias expansion (billion laughs)", lambda tmp: train_config(tmp, LAUGHS)),
    (
        "train --config: YAML nested 100,000 deep",
        lambda tmp: train_config(tmp, "x: " + "[" * 10**5 + "]" * 10**5),
    ),
    ("train --config: recursive YAML alias", lambda tmp: train_config(tmp, "a: &a [*a]\n")),
    (
        "train: corpus with invalid UTF-8",
        train_with_corpus(b"text\n\n" * 50 + b"\xff\xfe" + b"more\n\n" * 50),
    ),
    ("train: empty corpus", train_with_corpus(b"")),
    ("train: 10-byte corpus", train_with_corpus(b"0123456789")),
    ("train: optim.lr=abc", train_with_corpus(b"To be, or not to be.\n\n" * 40, "optim.lr=abc")),
    ("train --resume with another n_blocks", resume_other_shape),
    (
        "sample --out LINK (symlink to a file)",
        lambda tmp: (tmp / "o").symlink_to(tmp) or sample_to(tmp, tmp / "o"),
    ),
    ("sample --out LINK --overwrite: the link is replaced, its target kept", sample_through_symlink),
    ("sample --out FIFO --overwrite", sample_to_fifo),
    ("sample --out /dev/null --overwrite", lambda tmp: sample_to(tmp, Path("/dev/null"), "--overwrite")),
    ("trainer_state.pt truncated", trainer_state_bytes(b"PK\x03\x04 truncated")),
    (
        "trainer_state.pt a foreign pickle",
        trainer_state_bytes(
            b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94."
        ),
    ),
]


if __name__ == "__main__":  # python benchmarks/bad_inputs/trust2.py: this module's table only
    import importlib.util

    runner_path = Path(__file__).resolve().parents[1] / "bad_inputs.py"  # the package shadows the runner
    spec = importlib.util.spec_from_file_location("bad_inputs_runner", runner_path)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for label, action in CASES:
        print(label, "|", *runner.run_case(action))
