"""The UnmaskingRule protocol: which masked positions of a block to reveal at one step.

A rule is a pure function of the step's state. The block sampler owns every random draw: it
hands the rule ``noise``, one uniform [0, 1) float64 per position drawn from the row's own
generator, so rules stay deterministic functions that property tests can drive directly.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from dind.registry import Registry


@runtime_checkable
class UnmaskingRule(Protocol):
    """Picks the positions to reveal at step ``step`` of a block's ``steps``-step budget.

    ``uses_confidence``: when False the sampler calls ``select`` with ``confidence=None`` before
    proposing any token and then samples tokens only where the rule reveals (the reveal set of
    such rules does not depend on the tokens, so this is the same distribution at far lower
    cost); when True ``confidence`` holds, at masked positions, the model's probability of the
    token proposed there (temperature 1, no nucleus), and -inf elsewhere.

    ``may_skip_steps``: False for rules that reveal at least one position per step.

    ``uses_steps`` (optional, default True): False for rules whose reveals ignore the step
    budget (first-hitting, confidence threshold); a stage that sets ``steps`` ("/N" in plan text)
    with such a rule is an error (``check_stage_steps``), never silently ignored.

    Invariant (tests/sampling/test_unmasking.py checks it for every registered rule): the
    returned (batch, width) bool tensor is a subset of ``masked``; in every row that has a masked
    position it holds at least one True at every step (rules with ``may_skip_steps``: at every
    step ``>= steps - 1``, where it reveals all of them), so a block terminates within
    ``max(width, steps)`` steps. Rows are independent: a row's reveal set depends only on that
    row's inputs.
    """

    uses_confidence: bool
    may_skip_steps: bool

    def default_steps(self, width: int) -> int:
        """The per-block step budget used when the stage does not set one."""
        ...

    def select(
        self, masked: Tensor, noise: Tensor, confidence: Tensor | None, *, step: int, steps: int
    ) -> Tensor:
        """masked (batch, width) bool, noise (batch, width) float64 in [0, 1),
        confidence (batch, width) or None -> reveal (batch, width) bool."""
        ...


UNMASKING_RULES: Registry[UnmaskingRule] = Registry(
    "unmasking_rules", entry_point_group="dind.unmasking_rules"
)


def check_stage_steps(stages: object, default_rule: object) -> None:
    """Raise ValueError for a stage with a step budget whose (own or default) rule ignores it."""
    for index, stage in enumerate(stages, start=1):
        rule = stage.unmasking if stage.unmasking is not None else default_rule
        if stage.steps is not None and not getattr(rule, "uses_steps", True):
            raise ValueError(
                f"stage {index}: steps=/{stage.steps} is ignored by the unmasking rule {type(rule).__name__} "
                "(it takes one step per revealed token, or as many as its threshold needs); drop '/N' "
                "or pick a rule that uses steps, e.g. {unmasking=confidence_topk} or ancestral"
            )


def steps_left(step: int, steps: int) -> int:
    """Steps remaining including this one; at least 1, so a rule past its budget finishes the block."""
    return max(steps - step, 1)


def most_confident(masked: Tensor, score: Tensor) -> Tensor:
    """(batch, width) bool: the single masked position of highest ``score`` in each row that has one."""
    ranked = score.masked_fill(~masked, float("-inf"))
    best = ranked.argmax(dim=1, keepdim=True)
    chosen = masked.new_zeros(masked.shape).scatter_(1, best, True)
    return chosen & masked
