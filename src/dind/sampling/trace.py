"""What a generation returns: final tokens and scores plus one ``StageTrace`` per stage."""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor


def _json_float(value: float) -> float | str:
    # JSON has no infinities; frozen (prompt) positions score +inf
    return value if math.isfinite(value) else ("inf" if value > 0 else ("-inf" if value < 0 else "nan"))


def _tensor_to_json(tensor: Tensor) -> Any:
    if tensor.dtype.is_floating_point:
        return (
            [[_json_float(v) for v in row] for row in tensor.tolist()]
            if tensor.dim() == 2
            else [_json_float(v) for v in tensor.tolist()]
        )
    return tensor.tolist()


@attrs.frozen(eq=False)  # holds tensors: compare their values, not ==
class StageTrace:
    """One stage of a multi-stage generation.

    block_size: the stage's block size (None = global); remask_ratio: gamma of the stage.
    remasked: (batch, length) bool, positions set back to MASK before the stage (all False for
      the first stage, whose draft starts all-MASK).
    tokens / scores: (batch, length) draft and tracker scores after the stage.
    nfe: (batch,) long, BD3-LM convention (denoising forwards whose block content changed; cache
      appends not counted). scorer_nfe: (batch,) long, the forwards the stage's remasker made to
      score the draft before the stage (post-hoc: 1, post-hoc masked: its chunks; 0 for
      snapshot and random), not in ``nfe``. forward_passes: raw model calls for the whole batch,
      appends included (summed over regeneration attempts when low-entropy rejection redraws rows).
    wall_time_s / model_time_s: the stage's wall-clock time and the part spent inside model calls.
    """

    block_size: int | None
    remask_ratio: float
    remasked: Tensor
    tokens: Tensor
    scores: Tensor
    nfe: Tensor
    forward_passes: int
    wall_time_s: float
    model_time_s: float
    scorer_nfe: Tensor

    @classmethod
    def unrun(cls, block_size: int | None, remask_ratio: float, tokens: Tensor, scores: Tensor) -> StageTrace:
        """A stage no row has run yet: nothing remasked, ``tokens`` / ``scores`` as they are, no forwards."""
        zeros = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        remasked = torch.zeros_like(tokens, dtype=torch.bool)
        return cls(
            block_size, remask_ratio, remasked, tokens.clone(), scores.clone(), zeros, 0, 0.0, 0.0, zeros
        )

    def rows(self, rows: list[int], length: int) -> StageTrace:
        """This stage for ``rows`` and their first ``length`` positions."""
        cut = {name: getattr(self, name)[rows, :length] for name in ("remasked", "tokens", "scores")}
        return attrs.evolve(self, nfe=self.nfe[rows], scorer_nfe=self.scorer_nfe[rows], **cut)

    def with_rows(self, part: StageTrace, rows: list[int]) -> StageTrace:
        """This stage with ``part`` (of ``rows``, their first ``part``'s length positions) written
        in; raw forward counts and times add up."""
        fields = {}
        for name in ("remasked", "tokens", "scores", "nfe", "scorer_nfe"):
            value, new = getattr(self, name).clone(), getattr(part, name)
            if new.dim() == 2:
                value[rows, : new.shape[1]] = new
            else:
                value[rows] = new
            fields[name] = value
        return attrs.evolve(
            self,
            forward_passes=self.forward_passes + part.forward_passes,
            wall_time_s=self.wall_time_s + part.wall_time_s,
            model_time_s=self.model_time_s + part.model_time_s,
            **fields,
        )

    def summary(self) -> dict[str, Any]:
        """Scalars only: what a samples.jsonl line carries per stage."""
        return {
            "block_size": self.block_size,
            "remask_ratio": self.remask_ratio,
            "remasked": self.remasked.sum(dim=1).tolist(),
            "nfe": self.nfe.tolist(),
            "scorer_nfe": self.scorer_nfe.tolist(),
            "forward_passes": self.forward_passes,
            "wall_time_s": self.wall_time_s,
            "model_time_s": self.model_time_s,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "remasked": self.remasked.tolist(),
            "tokens": self.tokens.tolist(),
            "scores": _tensor_to_json(self.scores),
        }


@attrs.frozen(eq=False)  # holds tensors: compare their values, not ==
class GenerationResult:
    """tokens (batch, length) long: the final samples, no MASK left. scores (batch, length): the
    tracker's final scores (+inf on frozen positions). trace: one StageTrace per stage.
    seeds: the per-row seeds used (reproduces the batch). attempts (batch,) long: draws per row
    (1 unless low-entropy rejection redrew it). lengths (batch,) long: tokens up to and including
    the first generated EOS (the full length unless ``truncate_at_eos`` or variable-length
    sampling ended the row sooner); positions at or past ``lengths`` are padding. stops: why each
    row ended, one of ``STOP_REASONS`` per row ("length": it has the full length; "eos";
    "low_entropy": ``dind.sampling.stopping``)."""

    tokens: Tensor
    scores: Tensor
    trace: tuple[StageTrace, ...]
    seeds: tuple[int, ...]
    attempts: Tensor
    lengths: Tensor
    stops: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda self: ("length",) * len(self.seeds), takes_self=True)
    )

    @property
    def nfe(self) -> Tensor:
        """(batch,) total BD3-LM NFEs over the stages."""
        return torch.stack([stage.nfe for stage in self.trace]).sum(dim=0)

    @property
    def scorer_nfe(self) -> Tensor:
        """(batch,) total forwards of post-hoc remasking scorers over the stages (not in ``nfe``)."""
        return torch.stack([stage.scorer_nfe for stage in self.trace]).sum(dim=0)

    @property
    def padding(self) -> Tensor:
        """(batch, length) bool: positions after the sample's end."""
        positions = torch.arange(self.tokens.shape[1], device=self.tokens.device)
        return positions[None, :] >= self.lengths[:, None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, +inf as the string "inf")."""
        return {
            "tokens": self.tokens.tolist(),
            "scores": _tensor_to_json(self.scores),
            "seeds": list(self.seeds),
            "attempts": self.attempts.tolist(),
            "lengths": self.lengths.tolist(),
            "stops": list(self.stops),
            "nfe": self.nfe.tolist(),
            "scorer_nfe": self.scorer_nfe.tolist(),
            "trace": [stage.to_dict() for stage in self.trace],
        }
