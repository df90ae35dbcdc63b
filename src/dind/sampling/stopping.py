"""Variable-length sampling: BD3-LM's stop at EOS and on low entropy, inside the sampler.

``GenerateOptions(stop=VariableLength(eos_id=...))`` checks every row after each block of the
plan's first (drafting) stage, as BD3-LM's ``var_length`` sampler does after each block:

- EOS: a row whose generated part (after BOS and prompt) holds an ``eos_id`` stops; its sample
  ends just after the first one (length = that position + 1).
- low entropy: once ``end > window`` (``end``: the positions drafted so far), a row whose last
  ``window`` drafted tokens have a unigram entropy (nats) below ``min_entropy`` stops and drops
  that window (length = ``end - window``, never less than the frozen prefix). BD3-LM's values
  (256, 4.0) suit GPT-2 tokens; byte text sits near 3 nats, so pick lower values for byte
  models (``min_entropy=0`` turns the check off: no entropy is below 0).

When both fire the shorter length wins (BD3-LM: the entropy cut). A stopped row is padded with
``eos_id`` from its length on and makes no further forwards; the stage ends when every row has
stopped or the length is reached. Later stages refine each row at its own length (rows of equal
length together), so no stage ever attends to padding; an EOS that a later stage writes ends the
sample there too (a sample holds no generated EOS but its last token). ``GenerationResult.lengths``
says where each row ended and ``GenerationResult.stops`` why: "length" (ran to the full length),
"eos" or "low_entropy".

Differences from BD3-LM, on purpose: EOS is checked from the first block (BD3-LM checks both
rules only once the sequence is longer than 256, then truncates at the same EOS: the same tokens,
fewer wasted forwards); rows of a batch stop independently (BD3-LM samples one row at a time).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import attrs
import torch
from torch import Tensor

from dind.validation import positive_int

# BD3-LM's entropy rule for GPT-2 tokens (natural 256-token text: ~5.0-5.6 nats), and the same rule
# for byte tokenizers: 256-byte windows of the Shakespeare corpus measure 2.83 (min) / 2.89 (1%) /
# 3.19 (median) nats, so 4.0 would stop every byte sample
BD3LM_MIN_ENTROPY = 4.0
BYTE_MIN_ENTROPY = 2.5
ENTROPY_WINDOW = 256

StopReason = Literal["length", "eos", "low_entropy"]
STOP_REASONS: tuple[StopReason, ...] = ("length", "eos", "low_entropy")  # codes 0, 1, 2


def batch_unigram_entropy(tokens: Tensor) -> Tensor:
    """(batch, length) long -> (batch,) float64 entropy in nats of each row's token histogram.

    Vectorised over the batch: rows are sorted, runs of equal ids give the counts.
    """
    if tokens.dim() != 2:
        raise ValueError(f"tokens must have shape (batch, length) (got {tuple(tokens.shape)})")
    batch, length = tokens.shape
    if length == 0:
        return torch.zeros(batch, dtype=torch.float64)
    ordered, _ = torch.sort(tokens.cpu(), dim=1)
    run_start = torch.ones_like(ordered, dtype=torch.bool)
    run_start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_id = torch.cumsum(run_start.long(), dim=1) - 1
    counts = torch.zeros(batch, length, dtype=torch.float64)
    counts.scatter_add_(1, run_id, torch.ones(batch, length, dtype=torch.float64))
    probabilities = counts / length
    return -(probabilities * torch.log(probabilities.clamp_min(1e-300))).sum(dim=1)


def default_min_entropy(tokenizer_name: str | None) -> float:
    """The entropy threshold for a tokenizer: ``BYTE_MIN_ENTROPY`` for "bytes", else BD3-LM's."""
    return BYTE_MIN_ENTROPY if tokenizer_name == "bytes" else BD3LM_MIN_ENTROPY


def _token_id(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{attribute.name} must be a token id (an int >= 0) (got {value!r})")


def _entropy_bound(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{attribute.name} must be a finite number of nats >= 0 (got {value!r})")


@attrs.frozen
class VariableLength:
    """BD3-LM's variable-length sampling (see the module docstring): stop a row at its first
    generated ``eos_id``, or when its last ``window`` drafted tokens have a unigram entropy below
    ``min_entropy`` nats (then drop them)."""

    eos_id: int = attrs.field(validator=_token_id)
    window: int = attrs.field(default=ENTROPY_WINDOW, validator=positive_int)
    min_entropy: float = attrs.field(default=BD3LM_MIN_ENTROPY, validator=_entropy_bound)

    def check(self, tokens: Tensor, end: int, prompt_length: int) -> tuple[Tensor, Tensor]:
        """After drafting ``tokens[:, :end]``: (batch,) long lengths (``end`` where a row goes on)
        and (batch,) long reason codes (index into ``STOP_REASONS``; 0 where a row goes on)."""
        batch = tokens.shape[0]
        device = tokens.device
        lengths = torch.full((batch,), end, dtype=torch.long, device=device)
        reasons = torch.zeros(batch, dtype=torch.long, device=device)
        positions = torch.arange(end, device=device)
        is_eos = (tokens[:, :end] == self.eos_id) & (positions >= prompt_length)[None, :]
        first = torch.where(is_eos, positions[None, :], end).min(dim=1).values
        eos = first < end
        lengths = torch.where(eos, first + 1, lengths)
        reasons = torch.where(eos, STOP_REASONS.index("eos"), reasons)
        if end > self.window and self.min_entropy > 0:
            entropy = batch_unigram_entropy(tokens[:, end - self.window : end]).to(device)
            low = entropy < self.min_entropy
            cut = torch.full_like(lengths, max(end - self.window, prompt_length))
            shorter = low & (cut < lengths)
            lengths = torch.where(shorter, cut, lengths)
            reasons = torch.where(shorter, STOP_REASONS.index("low_entropy"), reasons)
        return lengths, reasons


@attrs.define(eq=False)
class StopState:
    """Where each row of a drafting stage stopped: ``lengths`` (batch,) long (the full length
    while it goes on) and ``reasons`` (batch,) long codes into ``STOP_REASONS``."""

    rule: VariableLength
    prompt_length: int
    lengths: Tensor
    reasons: Tensor

    @classmethod
    def start(
        cls, rule: VariableLength, batch: int, length: int, prompt_length: int, device: Any
    ) -> StopState:
        lengths = torch.full((batch,), length, dtype=torch.long, device=device)
        return cls(rule, prompt_length, lengths, torch.zeros(batch, dtype=torch.long, device=device))

    @property
    def running(self) -> Tensor:
        return self.reasons == 0

    def after_block(self, tokens: Tensor, end: int) -> bool:
        """Check the rows still running after ``tokens[:, :end]`` was drafted; pad the rows that
        stop (in place) with the rule's EOS. Returns True when every row has stopped."""
        lengths, reasons = self.rule.check(tokens, end, self.prompt_length)
        stops = self.running & (reasons > 0)
        if bool(stops.any()):
            self.lengths = torch.where(stops, lengths, self.lengths)
            self.reasons = torch.where(stops, reasons, self.reasons)
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            padding = stops[:, None] & (positions[None, :] >= lengths[:, None])
            tokens.masked_fill_(padding, self.rule.eos_id)
        return not bool(self.running.any())

    def names(self) -> tuple[StopReason, ...]:
        return tuple(STOP_REASONS[code] for code in self.reasons.tolist())


def truncate_after_eos(tokens: Tensor, eos_id: int, prompt_length: int) -> tuple[Tensor, Tensor]:
    """Set every position after each row's first generated EOS to EOS.

    Only positions >= ``prompt_length`` count (BOS shares GPT-2's EOS id). Returns the new tokens
    and (batch,) lengths: the first EOS's position + 1, or the full length when there is none.
    """
    length = tokens.shape[1]
    positions = torch.arange(length, device=tokens.device)
    is_eos = (tokens == eos_id) & (positions >= prompt_length)[None, :]
    first = torch.where(is_eos, positions[None, :], length).min(dim=1).values
    lengths = torch.clamp(first + 1, max=length)
    padded = tokens.masked_fill(positions[None, :] >= lengths[:, None], eos_id)
    return padded, lengths
