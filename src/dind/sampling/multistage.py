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
from dind.sampling.block_sampler import sample_stage, stage_spans
from dind.sampling.confidence import CONFIDENCE_TRACKERS, ConfidenceTracker, initial_scores
from dind.sampling.inputs import Prompt, check_generate_arguments, check_prompt_fits, prompt_prefix
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.postprocess import low_entropy_rows, truncate_after_eos
from dind.sampling.proposal import ProposalOptions
from dind.sampling.seeds import row_seed, row_seeds
from dind.sampling.trace import GenerationResult, StageTrace
from dind.sampling.unmasking import FirstHitting, UnmaskingRule
from dind.sampling.unmasking.base import check_stage_steps

__all__ = ["continue_plan", "generate", "row_seed"]

_Run = tuple[Tensor, Tensor, tuple[StageTrace, ...]]  # tokens, scores, per-stage trace


def generate(
    model: Denoiser,
    plan: StagePlan,
    *,
    length: int,
    batch_size: int = 1,
    prompt: Prompt = None,
    seed: int | Sequence[int] | None = None,
    tracker: ConfidenceTracker | None = None,
    unmasking: UnmaskingRule | None = None,
    use_cache: bool = True,
    step_mode: str = "dynamic",
    bos_id: int | None = None,
    stop_at_eos: bool = False,
    eos_id: int | None = None,
    reject_low_entropy: bool = False,
    max_retries: int = 10,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> GenerationResult:
    """Generate ``batch_size`` sequences of ``length`` tokens with the stages of ``plan``.

    prompt: token ids (prompt_length,) shared by all rows, or (batch, prompt_length); frozen.
    bos_id: if set, position 0 is BOS and frozen (BD3-LM convention); the prompt follows it.
    tracker: confidence signal (default: snapshot). unmasking: the default rule for stages that
      do not set their own (default: first-hitting).
    use_cache: exact KV cache over finished blocks; False runs the uncached reference path.
    step_mode: the cached step: "dynamic" (shapes grow block by block), "static" (fixed block
      width and cache length, preallocated cache: ``dind.models.static_step``) or "compiled" (the
      static step under ``torch.compile``: inductor on CPU, CUDA graphs on GPU); the same samples.
    stop_at_eos: after the last stage, every position after a row's first generated ``eos_id``
      (default: ``bos_id``) is set to EOS and counted as padding (``result.lengths``).
    reject_low_entropy: BD3-LM's degenerate-sample rejection (off by default; it flatters Gen PPL):
      when length > 256 and the unigram entropy of a row's last 256 tokens is < 4 nats, the row is
      regenerated, at most ``max_retries`` times (attempt k of a row uses its stream's sub-stream
      (ATTEMPT, k), so each draw differs).
    """
    prompt, seed = check_generate_arguments(
        model, plan, length=length, batch_size=batch_size, prompt=prompt, seed=seed, bos_id=bos_id,
        eos_id=eos_id, tracker=tracker, unmasking=unmasking,
    )  # fmt: skip
    if stop_at_eos and eos_id is None and bos_id is None:
        raise ValueError("stop_at_eos needs eos_id (or bos_id, used as EOS) (got None)")
    device = torch.device(device) if device is not None else _model_device(model)
    prefix = prompt_prefix(prompt, bos_id, batch_size, device)
    check_prompt_fits(prefix.shape[1], length, bos=bos_id is not None)
    plan.validate(length, prompt_length=prefix.shape[1])
    check_stage_steps(plan, unmasking or FirstHitting())  # "/N" with a rule that ignores steps
    seeds = row_seeds(seed, batch_size)
    streams = RowStreams.from_seeds(seeds, device)
    tracker = tracker if tracker is not None else CONFIDENCE_TRACKERS.build("snapshot")
    stepper = _stepper(model, step_mode, use_cache)
    run = _PlanRun(stepper, plan, length, tracker, unmasking or FirstHitting(), use_cache)
    bar = _progress_bar(plan, length, enabled=progress)
    on_block = bar.update if bar is not None else None
    tokens, scores, trace = run(prefix, streams, on_block)
    attempts = torch.ones(batch_size, dtype=torch.long, device=device)
    for _ in range(max_retries if reject_low_entropy else 0):
        redo = low_entropy_rows(tokens).nonzero().flatten().tolist()
        if not redo:
            break
        if bar is not None:
            bar.total += _blocks_per_run(plan, length)
        again = run(prefix[redo], streams.rows(redo).child(ATTEMPT, attempts[redo]), on_block)
        tokens, scores, trace = _merge(tokens, scores, trace, redo, again)
        attempts[redo] += 1
    if bar is not None:
        bar.close()
    lengths = torch.full((batch_size,), length, dtype=torch.long, device=device)
    if stop_at_eos:
        tokens, lengths = truncate_after_eos(
            tokens, eos_id if eos_id is not None else bos_id, prefix.shape[1]
        )
    return GenerationResult(tokens, scores, trace, tuple(seeds), attempts, lengths)


def continue_plan(
    model: Denoiser,
    plan: StagePlan,
    draft: GenerationResult,
    *,
    tracker: ConfidenceTracker | None = None,
    unmasking: UnmaskingRule | None = None,
    use_cache: bool = True,
    step_mode: str = "dynamic",
) -> GenerationResult:
    """Run the stages of ``plan`` after the first ``len(draft.trace)`` from ``draft``'s tokens and scores.

    ``draft``: a ``generate`` result (no EOS truncation, no redraws) of a plan made of ``plan``'s
    first stages, with the same model, tracker and unmasking. Every random draw is a pure function
    of (row seed, stage, block, step, position), so the result equals ``generate`` of ``plan`` with
    the draft's seeds, token for token; its trace starts with the draft's stage traces (their NFEs
    and times included). Frozen positions (BOS, prompt) are those the draft scores +inf.
    ``step_mode``: as in ``generate`` (the same samples).
    """
    done, length = len(draft.trace), draft.tokens.shape[1]
    first = [(stage.block_size, float(stage.remask_ratio)) for stage in list(plan)[:done]]
    if not done < len(plan) or first != [(t.block_size, t.remask_ratio) for t in draft.trace]:
        raise ValueError(
            f"plan must start with the draft's {done} stage(s) and have more (got plan {plan}, draft stages "
            f"{[(t.block_size, t.remask_ratio) for t in draft.trace]})"
        )
    if bool((draft.attempts != 1).any()) or bool((draft.lengths != length).any()):
        raise ValueError(
            "draft must have no redrawn rows and no EOS truncation "
            f"(got attempts {draft.attempts.tolist()}, lengths {draft.lengths.tolist()}, length {length})"
        )
    frozen = torch.isposinf(draft.scores)
    prompt_length = int(frozen[0].sum())
    if not bool(frozen[:, :prompt_length].all()) or bool(frozen[:, prompt_length:].any()):
        raise ValueError("draft's +inf scores must be the same prefix of every row (got another pattern)")
    plan.validate(length, prompt_length=prompt_length)
    check_stage_steps(plan, unmasking or FirstHitting())
    tracker = tracker if tracker is not None else CONFIDENCE_TRACKERS.build("snapshot")
    stepper = _stepper(model, step_mode, use_cache)
    run = _PlanRun(stepper, plan, length, tracker, unmasking or FirstHitting(), use_cache)
    streams = RowStreams.from_seeds(draft.seeds, draft.tokens.device)
    start = (draft.tokens, draft.scores, draft.trace)
    tokens, scores, trace = run(draft.tokens[:, :prompt_length], streams, None, start)
    return GenerationResult(tokens, scores, trace, draft.seeds, draft.attempts, draft.lengths)


@attrs.frozen
class _PlanRun:
    """Algorithm 1 for a set of rows (their prefixes and random streams)."""

    model: Denoiser
    plan: StagePlan
    length: int
    tracker: ConfidenceTracker
    unmasking: UnmaskingRule
    use_cache: bool

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
            remasked = _remask(stage, tokens, scores, frozen, streams.child(REMASK, index), self.model)
            tokens = tokens.masked_fill(remasked, self.model.mask_id)
            outcome = sample_stage(
                self.model, tokens, scores, block_size=stage.block_size,
                rule=stage.unmasking if stage.unmasking is not None else self.unmasking,
                tracker=stage.tracker if stage.tracker is not None else self.tracker,
                streams=streams, steps=stage.steps,
                proposal=ProposalOptions(temperature=stage.temperature, top_p=stage.top_p),
                use_cache=self.use_cache, on_block=on_block, stage_index=index,
            )  # fmt: skip
            tokens, scores = outcome.tokens, outcome.scores
            trace.append(StageTrace(
                stage.block_size, float(stage.remask_ratio), remasked, tokens, scores, outcome.nfe,
                outcome.forward_passes, time.perf_counter() - begin, outcome.model_time_s,
            ))  # fmt: skip
        return tokens, scores, tuple(trace)


def _remask(
    stage: Stage,
    tokens: Tensor,
    scores: Tensor,
    frozen: Tensor,
    streams: RowStreams,
    model: Denoiser,
) -> Tensor:
    """(batch, length) bool: the positions the stage's remasker sends back to MASK."""
    if not stage.remask_ratio:
        return torch.zeros_like(frozen)
    eligible = ~frozen & (tokens != model.mask_id)
    context = RemaskContext(model, frozen, streams, block_size=stage.block_size)
    return remask(stage.remasker, tokens, scores, eligible, stage.remask_ratio, context)


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
        for name in ("remasked", "tokens", "scores", "nfe"):
            value = getattr(old, name).clone()
            value[rows] = getattr(new, name)
            fields[name] = value
        merged.append(StageTrace(
            old.block_size, old.remask_ratio, forward_passes=old.forward_passes + new.forward_passes,
            wall_time_s=old.wall_time_s + new.wall_time_s, model_time_s=old.model_time_s + new.model_time_s,
            **fields,
        ))  # fmt: skip
    return tokens, scores, tuple(merged)


def _stepper(model: Denoiser, step_mode: str, use_cache: bool) -> Denoiser:
    """The model, or its static-shape step wrapper (``step_mode`` "static" / "compiled")."""
    from dind.models.static_step import check_step_mode, static_step

    if check_step_mode(step_mode) == "dynamic":
        return model
    if not use_cache:
        raise ValueError(f"step_mode={step_mode!r} is a cached step: it needs use_cache=True (got False)")
    return static_step(model, compiled=step_mode == "compiled")


def _model_device(model: Denoiser) -> torch.device:
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")


def _blocks_per_run(plan: StagePlan, length: int) -> int:
    return sum(len(stage_spans(stage.block_size, length)) for stage in plan)


def _progress_bar(plan: StagePlan, length: int, *, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=_blocks_per_run(plan, length), desc="blocks", unit="block")
