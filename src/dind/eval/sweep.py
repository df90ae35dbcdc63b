"""The stage-2 sweep: Gen PPL of two-stage plans "D -> B@gamma" over block sizes and ratios (`dind sweep`).

The PAPER's Figure 2: with the draft block size D fixed, vary the stage-2 block size B at a fixed
remask ratio, and the ratio at a fixed B (``--grid axes``), or take every pair (``--grid cross``).
Each plan's samples are drawn with the same seeds, so its stage-1 drafts double as the
stage-1-only baseline. Results are appended to ``results.jsonl`` one plan at a time (fsynced), so
an interrupted sweep resumes where it stopped; ``results.csv`` and ``sweep.png`` are rewritten
after every plan.
"""

from __future__ import annotations

import csv
import functools
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from tqdm.auto import tqdm

from dind.eval.genppl import Judge
from dind.eval.plots import plot_stage_trace, plot_sweep
from dind.eval.report import decode_for_judge, evaluate, write_samples
from dind.eval.resumable import append_jsonl, read_jsonl_resumable
from dind.locks import lock_output
from dind.outputs import atomic_write


@attrs.frozen
class SweepPoint:
    block_size: int
    remask_ratio: float

    def plan_text(self, draft_block_size: int) -> str:
        return f"{draft_block_size} -> {self.block_size}@{self.remask_ratio:g}"


def sweep_points(
    block_sizes: Sequence[int],
    ratios: Sequence[float],
    *,
    grid: Literal["axes", "cross"],
    anchor_block_size: int,
    anchor_ratio: float,
) -> tuple[SweepPoint, ...]:
    """ "axes": block sizes at ``anchor_ratio`` then ratios at ``anchor_block_size``; "cross": all pairs."""
    if grid == "cross":
        pairs = list(itertools.product(block_sizes, ratios))
    elif grid == "axes":
        pairs = [(size, anchor_ratio) for size in block_sizes] + [(anchor_block_size, r) for r in ratios]
    else:
        raise ValueError(f"grid must be 'axes' or 'cross' (got {grid!r})")
    return tuple(dict.fromkeys(SweepPoint(int(b), float(r)) for b, r in pairs))


@attrs.frozen
class SweepSettings:
    """What makes two sweep results comparable (a resumed sweep must match them)."""

    model: str
    judge: str
    draft_block_size: int
    length: int
    num_samples: int
    seed: int
    bos_id: int | None
    tokenizer: str


def _generate_all(
    model: Any, plan: Any, settings: SweepSettings, batch_size: int, step: Any = None
) -> tuple[torch.Tensor, torch.Tensor, Any, dict]:
    """Final tokens and stage-1 drafts (num_samples, length), the first batch's trace, and costs."""
    from dind.sampling import GenerateOptions, generate

    options = GenerateOptions(bos_id=settings.bos_id, **({"step": step} if step is not None else {}))

    finals, drafts, nfe, scorer, traces = [], [], [], [], []
    started = time.perf_counter()
    for begin in range(0, settings.num_samples, batch_size):
        size = min(batch_size, settings.num_samples - begin)
        # sample i always uses row_seed(seed, i), whatever the batch size: every plan sees the same seeds
        result = generate(
            model,
            plan,
            length=settings.length,
            batch_size=size,
            seed=sample_seeds(settings.seed, begin, size),
            options=options,
        )
        finals.append(result.tokens.cpu())
        drafts.append(result.trace[0].tokens.cpu())
        nfe.append(
            torch.stack([stage.nfe.cpu() for stage in result.trace], dim=1).double()
        )  # (batch, stages)
        scorer.append(result.scorer_nfe.cpu().double())
        traces.append(result.trace)
    per_sample = torch.cat(nfe)
    costs = {
        "nfe_per_stage": per_sample.mean(dim=0).tolist(),
        "nfe": float(per_sample.sum(dim=1).mean()),
        "scorer_nfe": float(torch.cat(scorer).mean()),  # post-hoc remaskers' scoring forwards
        "wall_time_s": time.perf_counter() - started,
    }
    return torch.cat(finals), torch.cat(drafts), traces[0], costs


def sample_seeds(seed: int, start: int, count: int) -> list[int]:
    """Seeds of samples start .. start+count-1 of a run seeded ``seed``: sample i gets
    ``row_seed(seed, i)``, the seed row i of one big batch would get, so batching changes nothing."""
    from dind.sampling.multistage import row_seed

    return [row_seed(seed, index) for index in range(start, start + count)]


def run_point(
    model: Any,
    judge: Judge,
    tokenizer: Any,
    point: SweepPoint,
    settings: SweepSettings,
    *,
    out_dir: Path,
    batch_size: int,
    step: Any = None,
) -> dict[str, Any]:
    """Generate, score and save one plan's samples; the record of ``results.jsonl``.
    ``step``: ``generate``'s decode step (None: the default; the same samples; its name is
    recorded, it is not a setting)."""
    from dind.models.steps import DynamicStep, decode_step_name
    from dind.sampling.plan import StagePlan

    step = step if step is not None else DynamicStep()

    text = point.plan_text(settings.draft_block_size)
    plan = StagePlan.parse(text)
    finals, drafts, trace, costs = _generate_all(model, plan, settings, batch_size, step)
    decode = functools.partial(
        decode_for_judge, tokenizer.decode, eos_id=tokenizer.eos_id, eos_text=judge.tokenizer.eos_token
    )
    scores = {}
    for name, tokens in (("final", finals.tolist()), ("stage1", drafts.tolist())):
        texts = [decode(row) for row in tokens]
        scores[name] = evaluate(judge, texts, tokens=tokens, max_length=settings.length)
        if name == "final":
            write_samples(out_dir / "samples" / f"{slug(point, settings)}.jsonl", texts, tokens)
    plot_stage_trace(trace, out_dir / "traces" / f"{slug(point, settings)}.png")
    final, stage1 = scores["final"], scores["stage1"]
    return {
        "plan": text,
        "block_size": point.block_size,
        "remask_ratio": point.remask_ratio,
        "gen_ppl": final["gen_ppl"],
        "corpus_ppl": final["corpus_ppl"],
        "unigram_entropy": final["unigram_entropy"],
        "repeated_4gram_rate": final["repeated_4gram_rate"],
        "stage1_gen_ppl": stage1["gen_ppl"],
        "stage1_unigram_entropy": stage1["unigram_entropy"],
        **costs,
        "step_mode": decode_step_name(step),
        "settings": attrs.asdict(settings),
    }


def slug(point: SweepPoint, settings: SweepSettings) -> str:
    return f"d{settings.draft_block_size}-b{point.block_size}-r{point.remask_ratio:g}"


def read_results(path: Path, settings: SweepSettings) -> list[dict[str, Any]]:
    """Records already in ``results.jsonl``; they must share ``settings`` (else mixing would lie)."""
    records = read_jsonl_resumable(path)
    for record in records:
        if record["settings"] != attrs.asdict(settings):
            raise ValueError(
                f"results file {path} holds a sweep with other settings (got {record['settings']}, "
                f"now {attrs.asdict(settings)}); use another --out or the same settings"
            )
    return records


def write_summaries(records: Sequence[dict[str, Any]], out_dir: Path) -> None:
    columns = [
        "plan",
        "block_size",
        "remask_ratio",
        "gen_ppl",
        "corpus_ppl",
        "unigram_entropy",
        "repeated_4gram_rate",
        "stage1_gen_ppl",
        "nfe",
        "scorer_nfe",
        "wall_time_s",
    ]
    with atomic_write(out_dir / "results.csv", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    baselines = [r["stage1_gen_ppl"] for r in records if r["stage1_gen_ppl"] == r["stage1_gen_ppl"]]
    plot_sweep(
        records, out_dir / "sweep.png", baseline=sum(baselines) / len(baselines) if baselines else None
    )


def run_sweep(
    model: Any,
    judge: Judge,
    tokenizer: Any,
    points: Sequence[SweepPoint],
    settings: SweepSettings,
    *,
    out_dir: str | Path,
    batch_size: int = 8,
    progress: bool = False,
    step: Any = None,
) -> list[dict[str, Any]]:
    """Run every point not yet in ``out_dir/results.jsonl``; returns all records (old and new).
    ``batch_size`` only groups the work: sample i uses ``row_seed(seed, i)`` whatever the batch;
    ``step`` (``generate``'s decode step, None: the default) only changes the speed, so a resumed
    sweep may use another."""
    from dind.models.protocol import DecodeStep
    from dind.sampling.plan import StagePlan

    if settings.num_samples < 1:
        raise ValueError(f"num_samples must be >= 1 (got {settings.num_samples})")
    if step is not None and not isinstance(step, DecodeStep):
        raise TypeError(f"step must be a DecodeStep (e.g. StaticStep()) or None (got {type(step).__name__})")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock_output(out_dir / "results.jsonl", option="--out")  # two sweeps must not interleave their results
    for point in points:  # fail on a bad plan before spending any compute
        StagePlan.parse(point.plan_text(settings.draft_block_size)).validate(
            settings.length, prompt_length=int(settings.bos_id is not None)
        )
    results = out_dir / "results.jsonl"
    records = read_results(results, settings)
    done = {record["plan"] for record in records}
    todo = [point for point in points if point.plan_text(settings.draft_block_size) not in done]
    for point in tqdm(todo, desc="sweep", unit="plan", disable=not progress):
        record = run_point(
            model,
            judge,
            tokenizer,
            point,
            settings,
            out_dir=out_dir,
            batch_size=batch_size,
            step=step,
        )
        append_jsonl(results, record)
        records.append(record)
        write_summaries(records, out_dir)
    return records
