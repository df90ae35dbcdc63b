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
exact count, breaking ties from each row's stream; a
model-based remasker's scoring forward is not counted in the trace. A stage's own tracker
(``Stage.tracker``) replaces the sampler's for the reveals of that stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs
import torch
from torch import Tensor

from dind.counter_rng import ATTEMPT, REMASK, RowStreams
from dind.models.protocol import Denoiser
from dind.remaskers import RemaskContext, remask
from dind.sampling.block_sampler import sample_stage
from dind.sampling.confidence import ConfidenceTracker, initial_scores
from dind.sampling.inputs import (
    Prompt,
    check_eval_mode,
    check_generate_arguments,
    check_prompt_fits,
    checked_options,
    frozen_prefix_length,
    prompt_prefix,
)
from dind.sampling.options import GenerateOptions
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.progress import progress_bar
from dind.sampling.proposal import ProposalOptions
from dind.sampling.seeds import row_seed, row_seeds
from dind.sampling.trace import GenerationResult, StageTrace
from dind.sampling.unmasking import UnmaskingRule
from dind.sampling.unmasking.base import check_stage_steps
from dind.sampling.windows import Window, plan_windows

__all__ = ["continue_plan", "generate", "regenerate_rows", "row_seed"]

_Run = tuple[Tensor, Tensor, tuple[StageTrace, ...]]  # tokens, scores, per-stage trace


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
    run = _plan_run(model, plan, length, options)
    with progress_bar(run, enabled=options.progress) as on_block:
        tokens, scores, trace = run(prefix, RowStreams.from_seeds(seeds, device), on_block)
    ones = torch.ones(batch_size, dtype=torch.long, device=device)
    return GenerationResult(tokens, scores, trace, tuple(seeds), ones, ones * length)


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
    options = checked_options(options)
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
    run = _plan_run(model, plan, length, options)
    streams = RowStreams.from_seeds(draft.seeds, draft.tokens.device)
    start = (draft.tokens, draft.scores, draft.trace)
    with progress_bar(run, enabled=options.progress, skip=done) as on_block:
        tokens, scores, trace = run(draft.tokens[:, :prompt_length], streams, on_block, start)
    return GenerationResult(tokens, scores, trace, draft.seeds, draft.attempts, draft.lengths)


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
    options = checked_options(options)
    rows = sorted({int(row) for row in rows})
    batch, length = result.tokens.shape
    if any(not 0 <= row < batch for row in rows):
        raise ValueError(f"rows must be row indices in [0, {batch}) (got {rows})")
    if bool((result.lengths != length).any()):
        raise ValueError(f"result must have no EOS truncation (got lengths {result.lengths.tolist()})")
    if not rows:
        return result
    prefix = result.tokens[rows, : frozen_prefix_length(result.scores)]
    streams = RowStreams.from_seeds(result.seeds, result.tokens.device).rows(rows)
    attempts = result.attempts.clone()
    run = _plan_run(model, plan, length, options)
    with progress_bar(run, enabled=options.progress, rows=len(rows)) as on_block:
        again = run(prefix, streams.child(ATTEMPT, attempts[rows]), on_block)
    tokens, scores, trace = _merge(result.tokens, result.scores, result.trace, rows, again)
    attempts[rows] += 1
    return GenerationResult(tokens, scores, trace, result.seeds, attempts, result.lengths)


def _check_unchanged(draft: GenerationResult) -> None:
    length = draft.tokens.shape[1]
    if bool((draft.attempts != 1).any()) or bool((draft.lengths != length).any()):
        raise ValueError(
            "draft must have no redrawn rows and no EOS truncation "
            f"(got attempts {draft.attempts.tolist()}, lengths {draft.lengths.tolist()}, length {length})"
        )


def _plan_run(model: Denoiser, plan: StagePlan, length: int, options: GenerateOptions) -> _PlanRun:
    """The shared set-up of every entry point: the rule checked against the plan's step budgets,
    the decode step bound (and refreshed) once for the call."""
    check_stage_steps(plan, options.unmasking)  # "/N" with a rule that ignores steps
    check_eval_mode(model)  # generate checks it first; continue_plan and regenerate_rows here
    windows = plan_windows(model, plan, length, options.context)
    stepper = options.step.bind(model)
    return _PlanRun(
        stepper, plan, length, options.tracker, options.unmasking, options.step.uses_cache, windows
    )


@attrs.frozen
class _PlanRun:
    """Algorithm 1 for a set of rows (their prefixes and random streams)."""

    model: Denoiser
    plan: StagePlan
    length: int
    tracker: ConfidenceTracker
    unmasking: UnmaskingRule
    use_cache: bool
    windows: tuple[Window | None, ...]  # per stage: its attention window beyond the context

    def __call__(
        self,
        prefix: Tensor,
        streams: RowStreams,
        on_block: Callable[[], None] | None,
        start: _Run | None = None,
    ) -> _Run:
        """``start``: the run of the plan's first stages (``continue_plan``); they are not rerun."""
        batch, prompt_length = prefix.shape
        tokens = torch.full((batch, self.length), self.model.mask_id, dtype=torch.long, device=prefix.device)
        tokens[:, :prompt_length] = prefix
        frozen = torch.zeros_like(tokens, dtype=torch.bool)
        frozen[:, :prompt_length] = True
        scores = initial_scores(batch, self.length, frozen=frozen, device=prefix.device)
        trace = []
        if start is not None:
            tokens, scores, trace = start[0], start[1], list(start[2])
        for index, stage in enumerate(self.plan, start=1):
            if index <= len(trace):
                continue
            begin = time.perf_counter()
            remasked, scorer_forwards = _remask(
                stage, tokens, scores, frozen, streams.child(REMASK, index), self.model
            )
            tokens = tokens.masked_fill(remasked, self.model.mask_id)
            outcome = sample_stage(
                self.model, tokens, scores, block_size=stage.block_size,
                rule=stage.unmasking if stage.unmasking is not None else self.unmasking,
                tracker=stage.tracker if stage.tracker is not None else self.tracker,
                streams=streams, steps=stage.steps,
                proposal=ProposalOptions(temperature=stage.temperature, top_p=stage.top_p),
                use_cache=self.use_cache, on_block=on_block, stage_index=index, refine=stage.cache,
                window=self.windows[index - 1],
            )  # fmt: skip
            tokens, scores = outcome.tokens, outcome.scores
            trace.append(StageTrace(
                stage.block_size, float(stage.remask_ratio), remasked, tokens, scores, outcome.nfe,
                outcome.forward_passes, time.perf_counter() - begin, outcome.model_time_s,
                scorer_nfe=torch.full_like(outcome.nfe, scorer_forwards),
            ))  # fmt: skip
        return tokens, scores, tuple(trace)


def _remask(
    stage: Stage,
    tokens: Tensor,
    scores: Tensor,
    frozen: Tensor,
    streams: RowStreams,
    model: Denoiser,
) -> tuple[Tensor, int]:
    """(batch, length) bool: the positions the stage's remasker sends back to MASK; and the
    scoring forwards it made (post-hoc scorers: one per row each)."""
    if not stage.remask_ratio:
        return torch.zeros_like(frozen), 0
    eligible = ~frozen & (tokens != model.mask_id)
    context = RemaskContext(model, frozen, streams, block_size=stage.block_size)
    remasked = remask(stage.remasker, tokens, scores, eligible, stage.remask_ratio, context)
    return remasked, context.forwards.count


def _merge(
    tokens: Tensor, scores: Tensor, trace: tuple[StageTrace, ...], rows: list[int], again: _Run
) -> _Run:
    """Replace ``rows`` of a run by the rows of a redraw; raw counters and times add up."""
    new_tokens, new_scores, new_trace = again
    tokens, scores = tokens.clone(), scores.clone()
    tokens[rows], scores[rows] = new_tokens, new_scores
    merged = []
    for old, new in zip(trace, new_trace, strict=True):
        fields = {}
        for name in ("remasked", "tokens", "scores", "nfe", "scorer_nfe"):
            value = getattr(old, name).clone()
            value[rows] = getattr(new, name)
            fields[name] = value
        merged.append(StageTrace(
            old.block_size, old.remask_ratio, forward_passes=old.forward_passes + new.forward_passes,
            wall_time_s=old.wall_time_s + new.wall_time_s, model_time_s=old.model_time_s + new.model_time_s,
            **fields,
        ))  # fmt: skip
    return tokens, scores, tuple(merged)


def _model_device(model: Denoiser) -> torch.device:
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")
