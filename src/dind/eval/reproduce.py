"""``dind reproduce``: PAPER Tables 1-3 and Figure 2 analogues for checkpoints and a judge.

``run(config) -> Report``. For each model and each plan of ``reproduce_plans.sections``,
samples are generated in batches (sample i's seed is ``row_seed(seed, i)`` whatever the batch),
scored by the judge (final and stage-1 draft), and appended to ``results.jsonl`` as one record
per (model, plan, batch): a killed run resumes at the next batch (a torn last line is redone).
``reproduce_report`` then writes results.csv, report.md and the plots. Outputs other than
results.jsonl are checked before any work and need ``overwrite`` to be replaced.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import attrs

from dind.eval.reproduce_plans import ReproduceConfig, all_plans
from dind.eval.resumable import append_jsonl, read_jsonl_resumable

OUTPUTS = ("results.csv", "report.md", "figure2.png")


@attrs.frozen
class Report:
    """What a reproduce run produced: its records, the summary rows and the files written."""

    records: tuple[dict[str, Any], ...]
    rows: tuple[dict[str, Any], ...]
    files: tuple[Path, ...]
    wall_time_s: float


def _digest(row: list[int]) -> str:
    return hashlib.blake2b(str(row).encode(), digest_size=8).hexdigest()


def _settings(config: ReproduceConfig) -> dict[str, Any]:
    keys = ("judge", "length", "num_samples", "seed", "draft_block_size", "ratio", "quick")
    return {key: getattr(config, key) for key in keys}


def _score(judge: Any, rows: list[list[int]], tokenizer: Any, length: int) -> dict[str, Any]:
    """Byte model + byte judge: ids scored exactly; otherwise decoded text, retokenised by the judge."""
    from dind.eval.byte_judge import is_byte_judge
    from dind.eval.report import decode_for_judge, evaluate

    if tokenizer.mask_id == 257 and is_byte_judge(judge):
        return evaluate(judge, [""] * len(rows), tokens=rows, byte_tokens=True)
    eos_text = judge.tokenizer.eos_token
    texts = [
        decode_for_judge(tokenizer.decode, row, eos_id=tokenizer.eos_id, eos_text=eos_text) for row in rows
    ]
    return evaluate(judge, texts, tokens=[row[1:] for row in rows], max_length=length)


def _batch_record(model: Any, judge: Any, plan_text: str, start: int, count: int, config, tokenizer):
    import torch

    from dind.eval.sweep import sample_seeds
    from dind.sampling import generate
    from dind.sampling.plan import StagePlan

    began = time.perf_counter()
    with torch.no_grad():
        result = generate(
            model, StagePlan.parse(plan_text), length=config.length, batch_size=count,
            seed=sample_seeds(config.seed, start, count), bos_id=tokenizer.eos_id,
        )  # fmt: skip
    wall = time.perf_counter() - began
    finals = result.tokens.cpu().tolist()
    drafts = result.trace[0].tokens.cpu().tolist()
    final, draft = (_score(judge, rows, tokenizer, config.length) for rows in (finals, drafts))
    nfe = torch.stack([stage.nfe.cpu() for stage in result.trace], dim=1).sum(dim=1)
    return {
        "plan": plan_text,
        "start": start,
        "count": count,
        "sample_ppl": final["sample_ppl"],
        "sample_entropy": final["sample_entropy"],
        "stage1_ppl": draft["sample_ppl"],
        "stage1_digest": [_digest(row) for row in drafts],
        "nfe": nfe.tolist(),
        "wall_time_s": wall,
        "example": tokenizer.decode(finals[0])[:160],
    }


def _check_outputs(config: ReproduceConfig) -> Path:
    from dind.outputs import check_output

    out = Path(config.out)
    for name in OUTPUTS:
        check_output(out / name, overwrite=config.overwrite, option="--out")
    return out


def run(config: ReproduceConfig, *, progress: bool = False) -> Report:
    """Run (or resume) every plan for every model; write results.jsonl, CSV, report and plots."""
    import torch

    from dind.eval.judge import load_judge
    from dind.eval.reproduce_report import write_report
    from dind.sampling.command import load_model, resolve_tokenizer
    from dind.sampling.plan import StagePlan

    out = _check_outputs(config)  # before any model loads or sample is drawn
    plans = all_plans(config)
    for text in plans:
        StagePlan.parse(text).validate(config.length, prompt_length=1)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    settings = _settings(config)
    records = read_jsonl_resumable(results)
    for record in records:
        if record["settings"] != settings:
            raise ValueError(
                f"{results} holds a run with other settings (got {record['settings']}, now {settings}); "
                "use another --out or the same settings"
            )
    done = {(r["model"], r["plan"], r["start"]) for r in records}
    judge = load_judge(config.judge, device=config.device)
    began = time.perf_counter()
    for model_dir in config.models:
        model = load_model(model_dir, torch.device(config.device)).eval()
        _, tokenizer = resolve_tokenizer(None, model)
        for text in plans:
            for start in range(0, config.num_samples, config.batch_size):
                if (model_dir, text, start) in done:
                    continue
                count = min(config.batch_size, config.num_samples - start)
                record = _batch_record(model, judge, text, start, count, config, tokenizer)
                record = {"model": model_dir, **record, "settings": settings}
                append_jsonl(results, record)
                records.append(record)
                if progress:
                    print(f"{model_dir} | {text} | samples {start}..{start + count - 1} "
                          f"| {record['wall_time_s']:.1f}s", flush=True)  # fmt: skip
    rows, files = write_report(records, config, out, elapsed_s=time.perf_counter() - began)
    return Report(tuple(records), tuple(rows), tuple(files), time.perf_counter() - began)
