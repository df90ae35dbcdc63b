"""Bad inputs and faults of ``dind eval``, ``dind sweep``, ``dind reproduce``, the judge and the
resumable results file (helper area: evaluation). Each case is (label, action(tmp))."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from unittest import mock


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def judge(tmp: Path) -> Path:
    """A one-layer byte-level judge (dind_tokenizer: bytes) saved in ``tmp/judge``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp / "judge"
    if not path.exists():
        config = GPT2Config(
            n_layer=1,
            n_embd=16,
            n_head=2,
            n_positions=64,
            vocab_size=257,
            bos_token_id=256,
            eos_token_id=256,
            dind_tokenizer="bytes",
            dind_window=32,
        )
        GPT2LMHeadModel(config).save_pretrained(path)
    return path


def samples(tmp: Path, text: str, name: str = "s.jsonl") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def tokens_file(tmp: Path, *rows: list[int]) -> Path:
    return samples(tmp, "".join(json.dumps({"tokens": row}) + "\n" for row in rows))


def eval_(tmp: Path, path: Path, *extra: str) -> int:
    return cli(["eval", str(path), "--judge", str(judge(tmp)), "--no-progress", *extra])


def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def micro_dir(tmp: Path) -> Path:
    import torch

    from dind.models import build, save_pretrained

    return save_pretrained(
        build("micro", generator=torch.Generator().manual_seed(0), init="random"), tmp / "micro"
    )


def reproduce(tmp: Path, *extra: str) -> int:
    return cli(["reproduce", "--model", str(micro_dir(tmp)), "--judge", str(judge(tmp)), "--length", "16",
                "--quick", "--num-samples", "1", "--out", str(tmp / "r"), *extra])  # fmt: skip


def resumable_case(content: bytes):
    def action(tmp: Path):
        from dind.eval.resumable import read_jsonl_resumable

        (tmp / "r.jsonl").write_bytes(content)
        records = read_jsonl_resumable(tmp / "r.jsonl")
        print(f"{len(records)} complete records read")
        return 0

    return action


def generate_with(plan: str):
    def action(tmp: Path):
        import torch

        from dind.models import build
        from dind.sampling import generate
        from dind.sampling.plan import StagePlan

        model = build("micro", generator=torch.Generator().manual_seed(0), init="random").eval()
        generate(model, StagePlan.parse(plan), length=16, batch_size=1, seed=0)
        return 0

    return action


def eval_disk_full(tmp: Path) -> int:
    path = samples(tmp, json.dumps({"text": "hello"}) + "\n")
    with mock.patch("os.replace", full):
        return eval_(tmp, path)


def append_disk_full(tmp: Path) -> int:
    from dind.eval.resumable import append_jsonl

    with mock.patch("os.fsync", full):
        append_jsonl(tmp / "r.jsonl", {"a": 1})
    return 0


def existing_report(tmp: Path) -> int:
    path = samples(tmp, json.dumps({"text": "hello"}) + "\n")
    (tmp / "s.genppl.json").write_text("{}")
    return eval_(tmp, path)


def reproduce_twice(tmp: Path) -> int:
    reproduce(tmp)
    return reproduce(tmp)


CASES = [
    ("eval: samples file missing", lambda tmp: eval_(tmp, tmp / "missing.jsonl")),
    ("eval: empty samples file", lambda tmp: eval_(tmp, samples(tmp, ""))),
    ("eval: only blank lines", lambda tmp: eval_(tmp, samples(tmp, "\n\n\n"))),
    (
        "eval: malformed JSON on line 4 after blank lines",
        lambda tmp: eval_(tmp, samples(tmp, '{"text":"a"}\n\n\n{"text":\n')),
    ),
    ("eval: a line that is a JSON list", lambda tmp: eval_(tmp, samples(tmp, "[1, 2]\n"))),
    ("eval: a record with neither text nor tokens", lambda tmp: eval_(tmp, samples(tmp, '{"foo": 1}\n'))),
    ("eval: tokens not a list", lambda tmp: eval_(tmp, samples(tmp, '{"tokens": "abc"}\n'))),
    ("eval: float token ids", lambda tmp: eval_(tmp, samples(tmp, '{"tokens": [1.5, 2]}\n'))),
    (
        "eval: MASK id 257 in a bytes sample",
        lambda tmp: eval_(tmp, tokens_file(tmp, [256, 72, 257]), "--tokenizer", "bytes"),
    ),
    (
        "eval: id 300 with --tokenizer bytes",
        lambda tmp: eval_(tmp, tokens_file(tmp, [256, 300]), "--tokenizer", "bytes"),
    ),
    ("eval: negative id", lambda tmp: eval_(tmp, tokens_file(tmp, [256, -3]), "--tokenizer", "bytes")),
    (
        "eval: GPT-2 MASK 50257 with --tokenizer gpt2",
        lambda tmp: eval_(tmp, tokens_file(tmp, [50256, 50257]), "--tokenizer", "gpt2"),
    ),
    (
        "eval: byte samples with --tokenizer gpt2",
        lambda tmp: eval_(tmp, tokens_file(tmp, [256, *range(65, 140)]), "--tokenizer", "gpt2"),
    ),
    ("eval: unknown --tokenizer", lambda tmp: eval_(tmp, tokens_file(tmp, [256, 65]), "--tokenizer", "nope")),
    (
        "eval: judge directory missing",
        lambda tmp: cli(["eval", str(samples(tmp, '{"text": "a"}\n')), "--judge", str(tmp / "nope")]),
    ),
    (
        "eval: judge is a file",
        lambda tmp: cli(
            ["eval", str(samples(tmp, '{"text": "a"}\n')), "--judge", str(samples(tmp, "x", "j"))]
        ),
    ),
    (
        "eval: judge dir without weights",
        lambda tmp: (
            (tmp / "e").mkdir()
            or cli(["eval", str(samples(tmp, '{"text": "a"}\n')), "--judge", str(tmp / "e")])
        ),
    ),
    ("eval: report exists, no --overwrite", existing_report),
    ("eval: disk full writing the report", eval_disk_full),
    (
        "eval: --window larger than the judge context",
        lambda tmp: eval_(tmp, samples(tmp, '{"text": "abc"}\n'), "--window", "999"),
    ),
    ("eval: --stride 0", lambda tmp: eval_(tmp, samples(tmp, '{"text": "abc"}\n'), "--stride", "0")),
    (
        "sweep: --num-samples 0",
        lambda tmp: cli(["sweep", "--model", "micro", "--judge", str(judge(tmp)), "--num-samples", "0"]),
    ),
    (
        "sweep: --step-mode fast",
        lambda tmp: cli(["sweep", "--model", "micro", "--judge", str(judge(tmp)), "--step-mode", "fast"]),
    ),
    (
        "sweep: --batch-size -1",
        lambda tmp: cli(["sweep", "--model", "micro", "--judge", str(judge(tmp)), "--batch-size", "-1"]),
    ),
    (
        "sweep: --block-sizes not integers",
        lambda tmp: cli(["sweep", "--model", "micro", "--judge", "j", "--block-sizes", "a,b"]),
    ),
    ("results.jsonl: torn last line (no newline)", resumable_case(b'{"a": 1}\n{"a": 2}\n{"a": ')),
    ("results.jsonl: torn last line then newline", resumable_case(b'{"a": 1}\n{"a": \n')),
    ("results.jsonl: damage in the middle", resumable_case(b'{"a": 1}\ngarbage\n{"a": 2}\n')),
    ("results.jsonl: disk full while appending", append_disk_full),
    ("plan: '4/8' with the first-hitting default", generate_with("4/8")),
    ("plan: '4 -> 16@0.5/4' (first-hitting ignores steps)", generate_with("4 -> 16@0.5/4")),
    ("plan: '/8' with confidence_threshold", generate_with("4/8{unmasking=confidence_threshold}")),
    (
        "reproduce: --num-samples 0",
        lambda tmp: cli(["reproduce", "--num-samples", "0", "--out", str(tmp / "r")]),
    ),
    ("reproduce: --length 0", lambda tmp: cli(["reproduce", "--length", "0", "--out", str(tmp / "r")])),
    (
        "reproduce: model directory missing",
        lambda tmp: cli(
            ["reproduce", "--model", str(tmp / "nope"), "--judge", str(judge(tmp)), "--out", str(tmp / "r")]
        ),
    ),
    (
        "reproduce: judge directory missing",
        lambda tmp: cli(
            [
                "reproduce",
                "--model",
                str(micro_dir(tmp)),
                "--judge",
                str(tmp / "nope"),
                "--out",
                str(tmp / "r"),
            ]
        ),
    ),
    ("reproduce: --length 10 not divisible by the block sizes", lambda tmp: reproduce(tmp, "--length", "10")),
    ("reproduce: report exists, no --overwrite", reproduce_twice),
    ("reproduce: --step-mode fast", lambda tmp: reproduce(tmp, "--step-mode", "fast")),
]
