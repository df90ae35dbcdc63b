"""One run of a plan over a set of rows: PAPER Algorithm 1's stage loop, shared by ``generate``,
``continue_plan`` and ``regenerate_rows`` (``dind.sampling.multistage``).

Each stage: its remasker picks the positions to send back to MASK (``_remask``), then the block
sampler refills them. With variable-length sampling (``GenerateOptions.stop``) the first stage may
end rows early; the later stages then run for each group of rows of equal length at that length
(``PlanRun._by_length``): no stage attends to padding, and a row's result does not depend on the
other rows of its batch (a block stage whose size does not divide a row's length ends with a
shorter block).
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable

import attrs
import torch
from torch import Tensor

from dind.counter_rng import REMASK, RowStreams
from dind.models.protocol import Denoiser
from dind.remaskers import RemaskContext, remask
from dind.sampling.block_sampler import sample_stage
from dind.sampling.confidence import ConfidenceTracker, initial_scores
from dind.sampling.inputs import check_eval_mode
from dind.sampling.options import GenerateOptions
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.proposal import ProposalOptions
from dind.sampling.stopping import STOP_REASONS, StopState, VariableLength, truncate_after_eos
from dind.sampling.trace import StageTrace
from dind.sampling.unmasking import UnmaskingRule
from dind.sampling.unmasking.base import check_stage_steps
from dind.sampling.windows import Window, WindowWarning, plan_windows


@attrs.frozen(eq=False)
class Run:
    """A plan's run over some rows: tokens, scores, per-stage trace, and where (``lengths``) and
    why (``reasons``, codes into ``STOP_REASONS``) each row ended."""

    tokens: Tensor
    scores: Tensor
    trace: tuple[StageTrace, ...]
    lengths: Tensor
    reasons: Tensor


def plan_run(model: Denoiser, plan: StagePlan, length: int, options: GenerateOptions) -> PlanRun:
    """The shared set-up of every entry point: the rule checked against the plan's step budgets,
    the decode step bound (and refreshed) once for the call."""
    check_stage_steps(plan, options.unmasking)  # "/N" with a rule that ignores steps
    check_eval_mode(model)  # generate checks it first; continue_plan and regenerate_rows here
    windows = plan_windows(model, plan, length, options.context)
    stepper = options.step.bind(model)
    windows_at = functools.partial(_quiet_windows, model, plan, options.context)
    return PlanRun(
        stepper, plan, length, options.tracker, options.unmasking, options.step.uses_cache, windows,
        options.stop, windows_at,
    )  # fmt: skip


def _quiet_windows(
    model: Denoiser, plan: StagePlan, context: int | None, length: int
) -> tuple[Window | None, ...]:
    with warnings.catch_warnings():  # generate said it once, at the full length
        warnings.simplefilter("ignore", WindowWarning)
        return plan_windows(model, plan, length, context)


@attrs.frozen
class PlanRun:
    """Algorithm 1 for a set of rows (their prefixes and random streams)."""

    model: Denoiser
    plan: StagePlan
    length: int
    tracker: ConfidenceTracker
    unmasking: UnmaskingRule
    use_cache: bool
    windows: tuple[Window | None, ...]  # per stage: its attention window beyond the context
    stop: VariableLength | None = None  # variable-length sampling, in the first stage
    windows_at: Callable[[int], tuple[Window | None, ...]] | None = None  # the windows at another length

    def __call__(
        self,
        prefix: Tensor,
        streams: RowStreams,
        on_block: Callable[[], None] | None,
        start: Run | None = None,
        frozen_end: int = 0,
    ) -> Run:
        """``start``: the run of the plan's first stages (``continue_plan``); they are not rerun.
        ``frozen_end``: the last positions no stage may change (the EOS that ended a row)."""
        batch, prompt_length = prefix.shape
        tokens = torch.full((batch, self.length), self.model.mask_id, dtype=torch.long, device=prefix.device)
        tokens[:, :prompt_length] = prefix
        frozen = torch.zeros_like(tokens, dtype=torch.bool)
        frozen[:, :prompt_length] = True
        frozen[:, self.length - frozen_end :] = True
        scores = initial_scores(batch, self.length, frozen=frozen, device=prefix.device)
        full = torch.full((batch,), self.length, dtype=torch.long, device=prefix.device)
        run = Run(tokens, scores, (), full, torch.zeros_like(full)) if start is None else start
        for index, stage in enumerate(self.plan, start=1):
            if index <= len(run.trace):
                continue
            if bool((run.lengths < self.length).any()):  # variable length: each row at its own
                run = self._by_length(run, prompt_length, streams, on_block)
                break
            run = self._stage(index, stage, run, frozen, streams, on_block)
        if self.stop is not None and len(self.plan) > 1:
            run = _end_at_eos(run, self.stop.eos_id, prompt_length)
        return run

    def _stage(
        self,
        index: int,
        stage: Stage,
        run: Run,
        frozen: Tensor,
        streams: RowStreams,
        on_block: Callable[[], None] | None,
    ) -> Run:
        begin = time.perf_counter()
        remasked, scorer_forwards = _remask(
            stage, run.tokens, run.scores, frozen, streams.child(REMASK, index), self.model
        )
        tokens = run.tokens.masked_fill(remasked, self.model.mask_id)
        stop = None
        if index == 1 and self.stop is not None:
            stop = StopState.start(
                self.stop, tokens.shape[0], self.length, int(frozen[0].sum()), tokens.device
            )
        outcome = sample_stage(
            self.model, tokens, run.scores, block_size=stage.block_size,
            rule=stage.unmasking if stage.unmasking is not None else self.unmasking,
            tracker=stage.tracker if stage.tracker is not None else self.tracker,
            streams=streams, steps=stage.steps,
            proposal=ProposalOptions(temperature=stage.temperature, top_p=stage.top_p),
            use_cache=self.use_cache, on_block=on_block, stage_index=index, refine=stage.cache,
            window=self.windows[index - 1], stop=stop,
        )  # fmt: skip
        trace = StageTrace(
            stage.block_size, float(stage.remask_ratio), remasked, outcome.tokens, outcome.scores,
            outcome.nfe, outcome.forward_passes, time.perf_counter() - begin, outcome.model_time_s,
            scorer_nfe=torch.full_like(outcome.nfe, scorer_forwards),
        )  # fmt: skip
        lengths, reasons = (run.lengths, run.reasons) if stop is None else (stop.lengths, stop.reasons)
        return Run(outcome.tokens, outcome.scores, (*run.trace, trace), lengths, reasons)

    def _by_length(
        self, run: Run, prompt_length: int, streams: RowStreams, on_block: Callable[[], None] | None
    ) -> Run:
        """The remaining stages for each group of rows of equal length, on their own length: no
        stage attends to padding, and a row's result does not depend on the other rows. The EOS
        that ended a row stays: later stages refine what comes before it."""
        done = len(run.trace)
        later = [
            StageTrace.unrun(stage.block_size, float(stage.remask_ratio), run.tokens, run.scores)
            for stage in list(self.plan)[done:]
        ]
        tokens, scores = run.tokens.clone(), run.scores.clone()
        at_eos = run.reasons == STOP_REASONS.index("eos")
        for length, end in sorted(set(zip(run.lengths.tolist(), at_eos.long().tolist(), strict=True))):
            rows = ((run.lengths == length) & (at_eos == bool(end))).nonzero().flatten().tolist()
            if length - end <= prompt_length:  # nothing generated before the end: nothing to refine
                continue
            windows = self.windows_at(length) if self.windows_at is not None else self.windows
            part = attrs.evolve(self, length=length, stop=None, windows=windows)
            cut = tuple(stage.rows(rows, length) for stage in run.trace)
            start = Run(
                tokens[rows, :length], scores[rows, :length], cut, run.lengths[rows], run.reasons[rows]
            )
            again = part(tokens[rows, :prompt_length], streams.rows(rows), on_block, start, frozen_end=end)
            tokens[rows, :length], scores[rows, :length] = again.tokens, again.scores
            later = [full.with_rows(new, rows) for full, new in zip(later, again.trace[done:], strict=True)]
        return Run(tokens, scores, (*run.trace, *later), run.lengths, run.reasons)


def _end_at_eos(run: Run, eos_id: int, prompt_length: int) -> Run:
    """A variable-length run after its later stages: an EOS one of them wrote ends the row there."""
    tokens, lengths = truncate_after_eos(run.tokens, eos_id, prompt_length)
    shorter = lengths < run.lengths
    reasons = torch.where(shorter, STOP_REASONS.index("eos"), run.reasons)
    return attrs.evolve(run, tokens=tokens, lengths=torch.minimum(lengths, run.lengths), reasons=reasons)


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
