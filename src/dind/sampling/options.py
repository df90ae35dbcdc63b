"""``GenerateOptions``: how ``generate`` runs, as one frozen object (components, not mode flags).

What to generate is ``generate``'s own arguments (model, plan, length, batch size, prompt, seed);
everything else is here, each a component object or a plain value:

- ``tracker``: the confidence signal (default: ``SnapshotConfidence``, the probability of the token
  at reveal time); ``unmasking``: the rule for stages that set none (default: ``FirstHitting``);
- ``step``: the ``DecodeStep`` (default ``DynamicStep()``: the exact KV cache; ``UncachedStep()``
  the uncached reference; ``StaticStep()`` / ``CompiledStep()`` static shapes, compiled);
- ``bos_id``: position 0 is BOS and frozen (BD3-LM convention); the prompt follows it;
- ``device``: where to sample (default: the model's); ``progress``: a progress bar over blocks;
- ``context``: the attention window of stages that set none (default None: the model's
  ``model_length``; ``dind.sampling.windows``): a length beyond it is sampled in windows.
- ``stop``: variable-length sampling (default None: every sample has the full length);
  ``VariableLength(eos_id=...)`` stops each row of the first stage at EOS or on low entropy, as
  BD3-LM's ``var_length`` (``dind.sampling.stopping``); ``result.lengths`` / ``result.stops`` say
  where and why.

What happens to samples the sampler did not stop is a function over the result:
``dind.sampling.truncate_at_eos(result, eos_id)`` (BD3-LM's stop at EOS) and
``dind.eval.redraw_low_entropy(model, plan, result, ...)`` (BD3-LM's degenerate-sample rejection).
"""

from __future__ import annotations

import numbers
from typing import Any

import attrs
import torch

from dind.models.protocol import DecodeStep
from dind.models.steps import DynamicStep
from dind.sampling.confidence import ConfidenceTracker, SnapshotConfidence
from dind.sampling.stopping import VariableLength
from dind.sampling.unmasking import FirstHitting, UnmaskingRule
from dind.validation import optional_positive_int


def _component(kind: type, registry: str):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, str):
            raise TypeError(
                f"{attribute.name} must be an object, not the name {value!r}; "
                f"build it with {registry}.build({value!r})"
            )
        if not isinstance(value, kind):
            raise TypeError(f"{attribute.name} must be a {kind.__name__} (got {type(value).__name__})")

    return check


def _token_id(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    # the vocabulary bound is checked against the model, in generate
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = type(value).__name__
        raise TypeError(f"{attribute.name} must be an integer token id (got {kind} {value!r})")
    if value < 0:
        raise ValueError(f"{attribute.name} must be a token id >= 0 or None (got {value!r})")


def _optional_stop(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, VariableLength):
        raise TypeError(
            f"stop must be a dind.sampling.stopping.VariableLength or None (got {type(value).__name__} "
            f"{str(value)[:80]!r})"
        )


def _device(value: Any) -> torch.device | None:
    return None if value is None else torch.device(value)


@attrs.frozen
class GenerateOptions:
    """How ``generate`` / ``continue_plan`` run; see the module docstring. Every field is checked
    when the object is made (a name where an object belongs says which registry builds it)."""

    tracker: ConfidenceTracker = attrs.field(
        factory=SnapshotConfidence, validator=_component(ConfidenceTracker, "CONFIDENCE_TRACKERS")
    )
    unmasking: UnmaskingRule = attrs.field(
        factory=FirstHitting, validator=_component(UnmaskingRule, "UNMASKING_RULES")
    )
    step: DecodeStep = attrs.field(factory=DynamicStep, validator=_component(DecodeStep, "DECODE_STEPS"))
    bos_id: int | None = attrs.field(default=None, validator=_token_id)
    device: torch.device | None = attrs.field(default=None, converter=_device)
    progress: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    context: int | None = attrs.field(default=None, validator=optional_positive_int)
    stop: VariableLength | None = attrs.field(default=None, validator=_optional_stop)

    def evolve(self, **changes: Any) -> GenerateOptions:
        """A copy with ``changes`` applied (and checked)."""
        return attrs.evolve(self, **changes)
