"""`dind sweep`: plans over stage-2 block sizes and ratios, scored, written, resumable."""

import csv
import json

import attrs
import pytest
import torch

import dind.eval.sweep as sweep
from dind.cli import main
from dind.data.tokenizers import TOKENIZERS
from dind.eval.judge import load_judge
from dind.eval.sweep import SweepPoint, SweepSettings, run_sweep, sweep_points
from dind.models import StaticStep, build


def test_axes_grid_is_figure_2_and_cross_is_every_pair():
    axes = sweep_points([4, 16, 64], [0.25, 0.5], grid="axes", anchor_block_size=64, anchor_ratio=0.5)
    assert [(p.block_size, p.remask_ratio) for p in axes] == [(4, 0.5), (16, 0.5), (64, 0.5), (64, 0.25)]
    cross = sweep_points([4, 16], [0.25, 0.5], grid="cross", anchor_block_size=16, anchor_ratio=0.5)
    assert len(cross) == 4
    assert SweepPoint(64, 0.25).plan_text(4) == "4 -> 64@0.25"


@pytest.fixture(scope="module")
def setup(judge_dir):
    model = build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0).eval()
    judge = load_judge(judge_dir, device="cpu")
    settings = SweepSettings(
        model="micro",
        judge=str(judge_dir),
        draft_block_size=4,
        length=16,
        num_samples=3,
        seed=0,
        bos_id=256,
        tokenizer="bytes",
    )
    return model, judge, TOKENIZERS.build("bytes"), settings


def test_sweep_writes_results_and_resumes_without_redoing_plans(tmp_path, setup, monkeypatch):
    model, judge, tokenizer, settings = setup
    points = [SweepPoint(8, 0.5), SweepPoint(16, 0.5)]
    records = run_sweep(model, judge, tokenizer, points, settings, out_dir=tmp_path, batch_size=2)
    assert [r["plan"] for r in records] == ["4 -> 8@0.5", "4 -> 16@0.5"]
    for record in records:
        assert record["gen_ppl"] > 1 and record["stage1_gen_ppl"] > 1 and record["nfe"] > 0
        assert len(record["nfe_per_stage"]) == 2
    # the same seeds give the same stage-1 drafts in every plan: one stage-1 baseline
    assert records[0]["stage1_gen_ppl"] == pytest.approx(records[1]["stage1_gen_ppl"])
    assert (
        len(json.loads((tmp_path / "samples" / "d4-b8-r0.5.jsonl").read_text().splitlines()[0])["tokens"])
        == 16
    )
    for name in ("sweep.png", "traces/d4-b16-r0.5.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    with (tmp_path / "results.csv").open() as file:
        assert [row["plan"] for row in csv.DictReader(file)] == ["4 -> 8@0.5", "4 -> 16@0.5"]

    ran = []
    real = sweep.run_point
    monkeypatch.setattr(sweep, "run_point", lambda *a, **k: ran.append(a[3]) or real(*a, **k))
    more = run_sweep(model, judge, tokenizer, [*points, SweepPoint(16, 0.25)], settings, out_dir=tmp_path)
    assert ran == [SweepPoint(16, 0.25)] and len(more) == 3
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3


def test_an_interrupted_sweep_keeps_finished_plans(tmp_path, setup, monkeypatch):
    model, judge, tokenizer, settings = setup
    real = sweep.run_point

    def crash_on_second(*args, **kwargs):
        if args[3].block_size == 16:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "run_point", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(
            model, judge, tokenizer, [SweepPoint(8, 0.5), SweepPoint(16, 0.5)], settings, out_dir=tmp_path
        )
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["plan"] for line in lines] == ["4 -> 8@0.5"]


def test_resuming_with_other_settings_is_refused(tmp_path, setup):
    model, judge, tokenizer, settings = setup
    run_sweep(model, judge, tokenizer, [SweepPoint(8, 0.5)], settings, out_dir=tmp_path)
    other = attrs.evolve(settings, seed=1)
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(model, judge, tokenizer, [SweepPoint(8, 0.5)], other, out_dir=tmp_path)


def test_the_static_step_mode_gives_the_same_records_and_may_resume(tmp_path, setup):
    model, judge, tokenizer, settings = setup
    keys = ("plan", "gen_ppl", "corpus_ppl", "unigram_entropy", "stage1_gen_ppl", "nfe")
    points = [SweepPoint(8, 0.5), SweepPoint(16, 0.5)]
    dynamic = run_sweep(model, judge, tokenizer, points, settings, out_dir=tmp_path / "d")
    run_sweep(model, judge, tokenizer, points[:1], settings, out_dir=tmp_path / "s", step=StaticStep())
    static = run_sweep(model, judge, tokenizer, points, settings, out_dir=tmp_path / "s")  # resumed
    assert [{k: r[k] for k in keys} for r in static] == [{k: r[k] for k in keys} for r in dynamic]
    assert [r["step_mode"] for r in static] == ["static", "dynamic"]
    with pytest.raises(
        TypeError, match=r"step must be a DecodeStep \(e.g. StaticStep\(\)\) or None \(got str\)"
    ):
        run_sweep(model, judge, tokenizer, points, settings, out_dir=tmp_path / "x", step="fast")
    assert not (tmp_path / "x" / "results.jsonl").exists()


def test_a_bad_plan_fails_before_any_work(tmp_path, setup):
    model, judge, tokenizer, settings = setup
    with pytest.raises(ValueError):
        run_sweep(
            model, judge, tokenizer, [SweepPoint(8, 0.5), SweepPoint(7, 0.5)], settings, out_dir=tmp_path
        )
    assert not (tmp_path / "results.jsonl").exists()


def test_sweep_command_end_to_end(tmp_path, judge_dir, capsys):
    model_dir = tmp_path / "micro"
    from dind.models import save_pretrained

    save_pretrained(
        build("micro", generator=torch.Generator().manual_seed(0), init="random", dropout=0.0), model_dir
    )
    out = tmp_path / "out"
    code = main(
        [
            "sweep",
            "--model",
            str(model_dir),
            "--judge",
            str(judge_dir),
            "--tokenizer",
            "bytes",
            "--length",
            "16",
            "--block-sizes",
            "8,16",
            "--ratios",
            "0.25",
            "--num-samples",
            "2",
            "--device",
            "cpu",
            "--judge-device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    plans = [json.loads(line)["plan"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert plans == ["4 -> 8@0.5", "4 -> 16@0.5", "4 -> 16@0.25"]
    assert "4 -> 16@0.25" in capsys.readouterr().out
