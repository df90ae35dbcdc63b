"""`dind demo`: draft, remask, refine, offline, in seconds; prints the stages and writes its files."""

import json

import torch

import dind.demo as demo
from dind.cli import build_parser, main
from dind.data.tokenizers import TOKENIZERS
from dind.models import build, save_pretrained
from dind.sampling.plan import StagePlan


def test_demo_runs_end_to_end_on_a_checkpoint(tmp_path, capsys):
    save_pretrained(
        build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0),
        tmp_path / "micro",
    )
    out = tmp_path / "out"
    code = main(
        [
            "demo",
            "--checkpoint",
            str(tmp_path / "micro"),
            "--length",
            "32",
            "--plan",
            "4 -> 32@0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        "stage 1: draft with blocks of 4" in printed and "stage 2: refined with blocks of global" in printed
    )
    assert "least confident positions" in printed and "total NFE" in printed
    assert (out / "sample.txt").read_text(encoding="utf-8").startswith("ROMEO:")
    trace = json.loads((out / "trace.json").read_text())
    assert len(trace["trace"]) == 2 and sum(trace["trace"][1]["remasked"][0]) == (32 - 6) // 2
    assert trace["stage_texts"][0].startswith("ROMEO:")
    assert (out / "trace.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_without_a_checkpoint_announces_random_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "packaged_checkpoint", lambda: None)
    code = main(
        [
            "demo",
            "--length",
            "16",
            "--plan",
            "4 -> 8@0.25 -> 16@0.5",
            "--prompt",
            "JULIET:",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "RANDOMLY INITIALISED" in captured.err
    assert "before stage 3" in captured.out and (tmp_path / "trace.png").exists()


def test_render_hides_remasked_positions_and_shows_eos():
    tokenizer = TOKENIZERS.build("bytes")
    ids = torch.tensor([*"héllo".encode(), tokenizer.eos_id, ord("x"), tokenizer.mask_id])
    hidden = torch.zeros(len(ids), dtype=torch.bool)
    hidden[0] = True
    assert demo.render(ids, tokenizer) == "héllo¶x_"
    assert demo.render(ids, tokenizer, hidden=hidden) == "_éllo¶x_"
    assert demo.render(torch.tensor([7, 65]), tokenizer) == "·A"  # control bytes stay visible


def test_default_demo_options_form_a_valid_plan():
    args = build_parser().parse_args(["demo"])
    prompt = TOKENIZERS.build("bytes").encode(args.prompt)
    StagePlan.parse(args.plan).validate(args.length, prompt_length=len(prompt))
    assert args.out.name == "dind-demo-out"


def test_stages_are_reported_as_they_finish_with_the_tokens_of_one_generate_call():
    from dind.sampling import GenerateOptions, generate

    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0).eval()
    plan, seen = StagePlan.parse("4 -> 16@0.25 -> 32@0.5"), []
    arguments = {"length": 32, "prompt": [82, 79], "seed": 3, "options": GenerateOptions()}

    def on_stage(result, index):
        seen.append(
            (index, len(result.trace), demo.stage_report(result, TOKENIZERS.build("bytes"), index, length=32))
        )

    staged = demo.generate_stage_by_stage(model, plan, on_stage=on_stage, **arguments)
    assert [(index, stages) for index, stages, _ in seen] == [(0, 1), (1, 2), (2, 3)]
    assert "stage 1: draft" in seen[0][2] and "before stage 3" in seen[2][2]
    whole = generate(model, plan, **arguments)
    assert torch.equal(staged.tokens, whole.tokens) and torch.equal(staged.nfe, whole.nfe)
    assert torch.equal(staged.trace[1].remasked, whole.trace[1].remasked)
