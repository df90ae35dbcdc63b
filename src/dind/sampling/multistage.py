"""The multi-stage (Diffusion in Diffusion) sampler: PAPER Algorithm 1 over a ``StagePlan``.

Stage 1 drafts from an all-MASK sequence with its (small) block size. Before each later stage the
stage's remasker sends floor(gamma * n_eligible) positions of every row back to MASK (eligible =
generated, i.e. not prompt/BOS, and not already masked), chosen from the tracker's scores; the
block sampler then refills only those positions with the stage's (larger) block size, with a
fresh KV cache. Kept tokens keep their scores; re-revealed positions get new ones.

Seeds: ``seed`` is one int per row, an int s (row r then uses ``row_seed(s, r)``, a hash of
(s, r): rows of nearby seeds do not overlap), or None (fresh random seeds); the per-row seeds are
reported in the result. Each row owns a counter-based random stream keyed by its seed
(``dind.counter_rng.RowStreams``; every draw is a hash of (seed, stage, block, step, position),
computed for the whole batch at once): row r of a batch equals the same row generated alone with
the same seed. A remasker ranks the whole batch at once (``Remasker.keys``, with a
``RemaskContext`` holding the model and the row streams) and ``dind.remaskers.remask`` applies the
exact count, breaking ties from each row's stream; a model-based remasker's scoring forwards are
counted apart (``StageTrace.scorer_nfe``). A stage's own tracker (``Stage.tracker``) replaces the
sampler's for the reveals of that stage. The stage loop itself is ``dind.sampling.plan_run``;
variable-length sampling (``GenerateOptions.stop``) is ``dind.sampling.stopping``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dind.counter_rng import ATTEMPT, RowStreams
from dind.models.protocol import Denoiser
from dind.sampling.inputs import (
    Prompt,
    check_generate_arguments,
    check_prompt_fits,
    checked_options,
    frozen_prefix_length,
    prompt_prefix,
)
from dind.sampling.options import GenerateOptions
from dind.sampling.plan import StagePlan
from dind.sampling.plan_run import Run, plan_run
from dind.sampling.progress import progress_bar
from dind.sampling.seeds import row_seed, row_seeds
from dind.sampling.stopping import STOP_REASONS
from dind.sampling.trace import GenerationResult, StageTrace

__all__ = ["continue_plan", "generate", "regenerate_rows", "row_seed"]


def generate(
    model: Denoiser,
    plan: StagePlan,
    *,
    length: int,
    batch_size: int = 1,
    prompt: Prompt = None,
    seed: int | Sequence[int] | None = 0,
    options: GenerateOptions | None = None,
) -> GenerationResult:
    """Generate ``batch_size`` sequences of ``length`` tokens with the stages of ``plan``.

    prompt: token ids (prompt_length,) shared by all rows, or (batch, prompt_length); frozen.
    seed: an int (row r uses ``row_seed(seed, r)``), one int per row, or None (fresh random seeds);
      the seeds used are ``result.seeds``.
    options: how it runs (``GenerateOptions``: tracker, unmasking rule, decode step, BOS, device,
      progress bar); None for the defaults. EOS truncation and low-entropy redraws are functions
      over the result (``truncate_at_eos``, ``dind.eval.redraw_low_entropy``).
    """
    options = checked_options(options)
    prompt, seed = check_generate_arguments(
        model, plan, length=length, batch_size=batch_size, prompt=prompt, seed=seed, bos_id=options.bos_id
    )
    device = options.device if options.device is not None else _model_device(model)
    prefix = prompt_prefix(prompt, options.bos_id, batch_size, device)
    check_prompt_fits(prefix.shape[1], length, bos=options.bos_id is not None)
    plan.validate(length, prompt_length=prefix.shape[1])
    seeds = row_seeds(seed, batch_size)
    run = plan_run(model, plan, length, options)
    with progress_bar(run, enabled=options.progress) as on_block:
        done = run(prefix, RowStreams.from_seeds(seeds, device), on_block)
    ones = torch.ones(batch_size, dtype=torch.long, device=device)
    return GenerationResult(
        done.tokens, done.scores, done.trace, tuple(seeds), ones, done.lengths, stops=_names(done.reasons)
    )


def continue_plan(
    model: Denoiser, plan: StagePlan, draft: GenerationResult, *, options: GenerateOptions | None = None
) -> GenerationResult:
    """Run the stages of ``plan`` after the first ``len(draft.trace)`` from ``draft``'s tokens and scores.

    ``draft``: a ``generate`` result (no EOS truncation, no redraws) of a plan made of ``plan``'s
    first stages, with the same model and options (tracker, unmasking). Every random draw is a pure
    function of (row seed, stage, block, step, position), so the result equals ``generate`` of
    ``plan`` with the draft's seeds, token for token; its trace starts with the draft's stage traces
    (their NFEs and times included). Frozen positions (BOS, prompt) are those the draft scores +inf.
    """
    options = _without_stop(checked_options(options), "continue_plan")
    done, length = len(draft.trace), draft.tokens.shape[1]
    first = [(stage.block_size, float(stage.remask_ratio)) for stage in list(plan)[:done]]
    if not done < len(plan) or first != [(t.block_size, t.remask_ratio) for t in draft.trace]:
        raise ValueError(
            f"plan must start with the draft's {done} stage(s) and have more (got plan {plan}, draft stages "
            f"{[(t.block_size, t.remask_ratio) for t in draft.trace]})"
        )
    _check_unchanged(draft)
    prompt_length = frozen_prefix_length(draft.scores)
    plan.validate(length, prompt_length=prompt_length)
    run = plan_run(model, plan, length, options)
    streams = RowStreams.from_seeds(draft.seeds, draft.tokens.device)
    full = torch.full_like(draft.lengths, length)
    start = Run(draft.tokens, draft.scores, draft.trace, full, torch.zeros_like(full))
    with progress_bar(run, enabled=options.progress, skip=done) as on_block:
        run_ = run(draft.tokens[:, :prompt_length], streams, on_block, start)
    return GenerationResult(run_.tokens, run_.scores, run_.trace, draft.seeds, draft.attempts, draft.lengths)


def regenerate_rows(
    model: Denoiser,
    plan: StagePlan,
    result: GenerationResult,
    rows: Sequence[int],
    *,
    options: GenerateOptions | None = None,
) -> GenerationResult:
    """``result`` with ``rows`` drawn again: attempt k + 1 of a row (k = ``result.attempts``) uses its
    stream's sub-stream (ATTEMPT, k), so every draw differs and stays reproducible; the trace's
    counters and times add up. ``result``: a ``generate`` result of ``plan`` with the same model
    and options, no EOS truncation. What ``dind.eval.redraw_low_entropy`` builds on."""
    options = _without_stop(checked_options(options), "regenerate_rows")
    rows = sorted({int(row) for row in rows})
    batch, length = result.tokens.shape
    if any(not 0 <= row < batch for row in rows):
        raise ValueError(f"rows must be row indices in [0, {batch}) (got {rows})")
    if bool((result.lengths != length).any()):
        raise ValueError(
            "result must have no EOS truncation and no variable-length stops "
            f"(got lengths {result.lengths.tolist()}, length {length})"
        )
    if not rows:
        return result
    prefix = result.tokens[rows, : frozen_prefix_length(result.scores)]
    streams = RowStreams.from_seeds(result.seeds, result.tokens.device).rows(rows)
    attempts = result.attempts.clone()
    run = plan_run(model, plan, length, options)
    with progress_bar(run, enabled=options.progress, rows=len(rows)) as on_block:
        again = run(prefix, streams.child(ATTEMPT, attempts[rows]), on_block)
    tokens, scores, trace = _merge(result.tokens, result.scores, result.trace, rows, again)
    attempts[rows] += 1
    return GenerationResult(tokens, scores, trace, result.seeds, attempts, result.lengths)


def _without_stop(options: GenerateOptions, caller: str) -> GenerateOptions:
    if options.stop is not None:
        raise ValueError(
            f"{caller} cannot apply options.stop (variable-length sampling stops rows while the first "
            f"stage drafts them): pass the whole plan to generate with it (got stop={options.stop!r})"
        )
    return options


def _names(reasons: Tensor) -> tuple[str, ...]:
    return tuple(STOP_REASONS[code] for code in reasons.tolist())


def _check_unchanged(draft: GenerationResult) -> None:
    length = draft.tokens.shape[1]
    if bool((draft.attempts != 1).any()) or bool((draft.lengths != length).any()):
        raise ValueError(
            "draft must have no redrawn rows and no EOS truncation "
            f"(got attempts {draft.attempts.tolist()}, lengths {draft.lengths.tolist()}, length {length})"
        )


def _merge(
    tokens: Tensor, scores: Tensor, trace: tuple[StageTrace, ...], rows: list[int], again: Run
) -> tuple[Tensor, Tensor, tuple[StageTrace, ...]]:
    """Replace ``rows`` of a run by the rows of a redraw; raw counters and times add up."""
    tokens, scores = tokens.clone(), scores.clone()
    tokens[rows], scores[rows] = again.tokens, again.scores
    return (
        tokens,
        scores,
        tuple(old.with_rows(new, rows) for old, new in zip(trace, again.trace, strict=True)),
    )


def _model_device(model: Denoiser) -> torch.device:
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")
