"""Stage plans: the sequence of (block size, remask ratio, remasker, ...) stages of DiD (PAPER Alg. 1).

Text form (``StagePlan.parse`` / ``str(plan)`` round-trip), stages joined by "->":

    stage     := block ["@" ratio] [":" component] ["/" steps] ["{" options "}"]
    block     := positive integer | "L"        ("L": one global block over the whole length)
    component := registered name ["(" key=value, ... ")"]
    options   := key=value pairs, comma separated: temperature, top_p, unmasking (a registered
                 rule, e.g. unmasking=confidence_threshold(threshold=0.8)), tracker (a registered
                 confidence tracker, e.g. tracker=margin), cache (a refine cache of a global
                 stage, e.g. cache=skeleton(every=4); default exact), context and slide (the
                 stage's attention window beyond the model's context: ``dind.sampling.windows``)

e.g. "4 -> 1024@0.5", "4 -> 64@0.25 -> 1024@0.5", "4/8 -> L@0.5:random{top_p=0.9}",
"4{tracker=margin} -> 256@0.5:posthoc_masked(chunks=8)". The remasker defaults to snapshot; a name
is looked up in the ``remaskers`` mapping given to ``parse`` (no arguments then) and then in the
REMASKERS registry, built with the arguments given (a remasker that needs the model takes it from
the sampler's ``RemaskContext``). Argument values are None, true/false, numbers or plain words.

``str(plan)`` never raises: a registered attrs component prints its name and the arguments that
differ from their defaults, so the text parses back to an equal plan; a component without such a
form (unregistered, or an argument such as a function) prints as ``<repr>``, which ``parse``
refuses with a message, never a different plan.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterator, Mapping

import attrs

from dind.registry import Registry
from dind.remaskers import REMASKERS, Remasker, SnapshotRemasker
from dind.sampling.confidence import CONFIDENCE_TRACKERS
from dind.sampling.refine_cache import REFINE_CACHES
from dind.sampling.unmasking import UNMASKING_RULES
from dind.textform import format_call, format_number, parse_call, split_top_level
from dind.validation import (
    bounded_int,
    closed_unit_interval,
    half_open_unit_interval,
    optional_positive_int,
    positive_number,
)

MAX_STEPS = 2**20  # denoising steps per block: each is a forward pass; more is a typo, not a plan


@attrs.frozen
class Stage:
    """One stage: blocks of ``block_size`` (None = global), ``remask_ratio`` of the eligible
    positions remasked by ``remasker`` before it, ``steps`` denoising steps per block (None = the
    unmasking rule's default), the proposal's temperature / nucleus top-p, the unmasking rule and
    the confidence tracker of the stage's reveals (None = the sampler's default); ``context`` /
    ``slide``: the stage's attention window (None = the sampler's default context, the model's
    ``model_length``; the slide's default depends on the stage: ``dind.sampling.windows``)."""

    block_size: int | None = attrs.field(validator=optional_positive_int)
    remask_ratio: float = attrs.field(default=0.0, converter=float, validator=closed_unit_interval)
    remasker: Remasker = attrs.field(factory=SnapshotRemasker)
    steps: int | None = attrs.field(default=None, validator=bounded_int(MAX_STEPS).or_none())
    temperature: float = attrs.field(default=1.0, converter=float, validator=positive_number)
    top_p: float = attrs.field(default=1.0, converter=float, validator=half_open_unit_interval)
    unmasking: object | None = None  # an UnmaskingRule; None = the sampler's default
    tracker: object | None = None  # a ConfidenceTracker; None = the sampler's default
    cache: object | None = None  # a RefineCache of a global stage; None = exact
    context: int | None = attrs.field(default=None, validator=optional_positive_int)
    slide: int | None = attrs.field(default=None, validator=optional_positive_int)

    def __str__(self) -> str:
        text = "L" if self.block_size is None else str(self.block_size)
        if self.remask_ratio:
            text += f"@{format_number(self.remask_ratio)}"
        name = _remasker_name(self.remasker)
        if name != "snapshot":
            text += f":{name}"
        if self.steps is not None:
            text += f"/{self.steps}"
        options = [
            f"{key}={format_number(getattr(self, key))}"
            for key in ("temperature", "top_p")
            if getattr(self, key) != 1.0
        ]
        if self.unmasking is not None:
            options.append(f"unmasking={_unmasking_name(self.unmasking)}")
        if self.tracker is not None:
            options.append(f"tracker={_tracker_name(self.tracker)}")
        if self.cache is not None:
            options.append(f"cache={_text_name(REFINE_CACHES, self.cache, 'refine cache')}")
        options += [
            f"{key}={value}" for key in ("context", "slide") if (value := getattr(self, key)) is not None
        ]
        return text + ("{" + ",".join(options) + "}" if options else "")


def _text_name(registry: Registry, component: object, kind: str) -> str:
    """The text form of ``component``: its registry name with its non-default arguments, or
    ``<repr>`` when it has none (``parse`` refuses that, naming the ``kind``)."""
    for name in registry.names():
        if registry.get(name) is type(component):
            text = format_call(name, component)
            if text is not None and _build(registry, text) == component:
                return text
            break
    text = repr(component)
    return text if text.startswith("<") else f"<{text}>"


def _build(registry: Registry, text: str) -> object:
    name, arguments = parse_call(text)
    factory = registry.get(name)
    try:
        accepted = [p for p in inspect.signature(factory).parameters if p not in ("args", "kwargs")]
    except (TypeError, ValueError):  # no signature to read: let the factory say
        accepted = None
    unknown = sorted(set(arguments) - set(accepted)) if accepted is not None else []
    if unknown:
        raise ValueError(f"{name} does not take {unknown} (accepted: {accepted or 'no arguments'})")
    return factory(**arguments)


def _remasker_name(remasker: Remasker) -> str:
    return _text_name(REMASKERS, remasker, "remasker")


def _tracker_name(tracker: object) -> str:
    return _text_name(CONFIDENCE_TRACKERS, tracker, "confidence tracker")


def _unmasking_name(rule: object) -> str:
    return _text_name(UNMASKING_RULES, rule, "unmasking rule")


def _stages(instance: object, attribute: attrs.Attribute, value: tuple[Stage, ...]) -> None:
    if not value:
        raise ValueError("stages must not be empty")
    if value[0].remask_ratio != 0.0:
        raise ValueError(
            f"stage 1 has nothing to remask: its remask_ratio must be 0 (got {value[0].remask_ratio})"
        )


_STAGE = re.compile(
    r"^(?P<block>\d+|L)(?:@(?P<ratio>[0-9.eE+-]+))?(?::(?P<remasker>[A-Za-z_][\w-]*(?:\([^)]*\))?))?"
    r"(?:/(?P<steps>\d+))?(?:\{(?P<options>[^}]*)\})?$"
)


@attrs.frozen
class StagePlan:
    stages: tuple[Stage, ...] = attrs.field(converter=tuple, validator=_stages)

    @classmethod
    def single(cls, block_size: int | None) -> StagePlan:
        return cls((Stage(block_size),))

    @classmethod
    def parse(cls, text: str, *, remaskers: Mapping[str, Remasker] | None = None) -> StagePlan:
        pieces = [piece.strip() for piece in text.split("->")]
        return cls(
            tuple(_parse_stage(piece, index + 1, remaskers or {}) for index, piece in enumerate(pieces))
        )

    def validate(self, length: int, *, prompt_length: int = 0) -> None:
        """Raise ValueError naming the stage (1-based), the rule and the value if the plan cannot
        run on sequences of ``length`` positions with a ``prompt_length`` frozen prefix."""
        if length < 1 or not 0 <= prompt_length < length:
            raise ValueError(
                f"need length >= 1 and 0 <= prompt_length < length (got {length}, {prompt_length})"
            )
        for index, stage in enumerate(self.stages, start=1):
            size = stage.block_size
            if size is not None and size > length:
                raise ValueError(f"stage {index}: block_size must be <= length (got {size}, length {length})")
            if size is not None and length % size:
                raise ValueError(
                    f"stage {index}: block_size must divide length (got {size}, length {length})"
                )
            if stage.cache is not None and size is not None and size < length:
                raise ValueError(
                    f"stage {index}: a refine cache (cache=...) applies to a global stage only "
                    f"(got block_size {size} < length {length}; use L)"
                )
        generated = length - prompt_length  # every generated position is eligible after stage 1
        for index, stage in enumerate(self.stages, start=1):
            if stage.remask_ratio and math.floor(stage.remask_ratio * generated) == 0:
                raise ValueError(
                    f"stage {index}: remask_ratio {format_number(stage.remask_ratio)} remasks no position "
                    f"(floor(ratio * {generated} generated positions) = 0 at length {length}); use a ratio "
                    f">= 1/{generated}, or 0 for no remasking"
                )

    def block_sizes(self) -> tuple[int | None, ...]:
        return tuple(stage.block_size for stage in self.stages)

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __str__(self) -> str:
        return " -> ".join(str(stage) for stage in self.stages)


def _ratio(text: str) -> float:
    """A remask ratio's text as a float; a non-zero ratio that underflows to 0 (``1e-400``) is an
    error, never a silent "no remasking"."""
    value = float(text)
    if value == 0 and any(digit in "123456789" for digit in re.split("[eE]", text)[0]):
        raise ValueError(
            f"remask_ratio {text[:50]!r} is not zero but underflows to 0.0 as a float; write 0 for no "
            "remasking or a ratio that remasks at least one position"
        )
    return value


def _parse_stage(piece: str, index: int, remaskers: Mapping[str, Remasker]) -> Stage:
    match = _STAGE.match(piece.replace(" ", ""))
    if match is None and "<" in piece:
        raise ValueError(
            f"stage {index}: {piece!r} holds a component printed as <...>: it has no text form "
            "(not registered, or an argument without a plain value); build that plan in Python"
        )
    if match is None:
        raise ValueError(
            f"stage {index}: cannot parse {piece!r}; expected e.g. '4', '1024@0.5', "
            f"'L@0.5:random/8{{top_p=0.9}}'"
        )
    kwargs: dict[str, object] = {"block_size": None if match["block"] == "L" else int(match["block"])}
    try:
        if match["ratio"] is not None:
            kwargs["remask_ratio"] = _ratio(match["ratio"])
        if match["remasker"] is not None:
            name = match["remasker"]
            kwargs["remasker"] = remaskers[name] if name in remaskers else _build(REMASKERS, name)
        if match["steps"] is not None:
            kwargs["steps"] = int(match["steps"])
        options = list(filter(None, split_top_level(match["options"] or "")))
        keys = [option.partition("=")[0] for option in options]
        for key in keys:
            if keys.count(key) > 1:
                raise ValueError(f"option {key!r} is given more than once (got {{{match['options']}}})")
        for option in options:
            key, _, value = option.partition("=")
            if key == "unmasking":
                kwargs[key] = _build(UNMASKING_RULES, value)
            elif key == "tracker":
                kwargs[key] = _build(CONFIDENCE_TRACKERS, value)
            elif key == "cache":
                kwargs[key] = _build(REFINE_CACHES, value)
            elif key in ("temperature", "top_p"):
                kwargs[key] = float(value)
            elif key in ("context", "slide"):
                if not value.isdigit():
                    raise ValueError(f"{key} must be a positive integer (got {value!r})")
                kwargs[key] = int(value)
            else:
                raise ValueError(
                    f"unknown option {key!r} (known: temperature, top_p, unmasking, tracker, cache, context, "
                    "slide)"
                )
        return Stage(**kwargs)
    except (ValueError, TypeError, KeyError, LookupError) as error:
        raise ValueError(f"stage {index} ({piece!r}): {error}") from None
