"""`dind reproduce`'s progress lines: each line's own seconds (a shared stage-1 draft printed once)
add up to no more than the generation's wall-clock time, which every line states as it goes."""

import re
import time

import torch

import dind.eval.reproduce as reproduce
from dind.eval.reproduce_plans import ReproduceConfig
from dind.models import build, save_pretrained

LINE = re.compile(r"\| samples (\d+)\.\.(\d+) \| ([\d.]+)s.* \| elapsed (\d+)s$")


def test_the_printed_seconds_add_up_to_at_most_the_elapsed_time(tmp_path, capsys, monkeypatch):
    import dind.sampling.multistage as multistage

    original = multistage.generate

    def slow_generate(*args, **kwargs):  # a draft worth counting: 0.3 s more per stage-1 draft
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(multistage, "generate", slow_generate)
    plans = ("4", "8", "4 -> L@0.5/8{unmasking=confidence_topk}", "4 -> L@0.25/8{unmasking=confidence_topk}")
    monkeypatch.setattr(reproduce, "all_plans", lambda config: plans)  # a few plans of every kind
    save_pretrained(build("micro", generator=torch.Generator().manual_seed(0), init="random"), tmp_path / "m")
    config = ReproduceConfig(models=(str(tmp_path / "m"),), judges=("unused",), out=str(tmp_path / "out"),
                             length=16, num_samples=2, batch_size=2, quick=True)  # fmt: skip
    store = reproduce.SampleStore(tmp_path / "out" / "samples", reproduce.generation_settings(config))
    total = reproduce.generate_samples(config, store, progress=True)
    lines = capsys.readouterr().out.splitlines()
    parsed = [LINE.search(line) for line in lines]
    assert all(parsed), [line for line, match in zip(lines, parsed, strict=True) if not match]
    assert len([line for line in lines if "shared stage-1 draft" in line]) == 1
    assert len(lines) == 1 + len(plans)  # one batch: the draft, then every plan
    own = [float(match[3]) for match in parsed]
    elapsed = [int(match[4]) for match in parsed]
    # printed to 0.1 s; the per-plan times printed before counted the 0.3 s draft again in both sharing plans
    assert sum(own) <= total + 0.05 * len(lines)
    assert elapsed == sorted(elapsed) and elapsed[-1] <= total + 1
    baseline = [line for line in lines if "| 4 | samples" in line]
    assert len(baseline) == 1 and "| 0.0s (+ the shared draft:" in baseline[0]  # the draft itself
