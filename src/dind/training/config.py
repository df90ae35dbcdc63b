"""The training configuration: ``TrainConfig``, its YAML/JSON round trip, and ``build()``.

A config is the Trainer's settings (``TrainSettings``: the top-level keys, one definition each)
plus one section per component, each defined next to the code it configures: ``model``
(``dind.training.model``), ``data`` (``.data``), ``objective`` (``.objective``), ``variance``
(``.variance``), ``optim`` (``.optim``). Every pluggable part is a ``ComponentSpec`` (a registry
name with its options, ``dind.training.components``), written as a nested mapping::

    objective:
      block_sizes: {name: bimodal, draft: 4, global_size: 1024, global_probability: 0.1}
      schedule: loglinear          # a bare name: no options
    trainer: default

Deprecated spellings still load (``dind.training.overrides`` lists them): the flat ``*_options``
keys next to a component's name (``block_sizes: bimodal`` + ``block_size_options: {draft: 4}``,
``model.options``, ``data.corpus_options``, ``objective.schedule_options``,
``optim.lr_schedule_options``) and ``optim.grad_clip`` (now top-level ``grad_clip``), in files and
in overrides alike; ``to_dict``/``to_yaml`` write the new spelling.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
import yaml
from torch import nn

from dind.errors import ConfigError
from dind.plugins import load_plugin
from dind.training.components import ComponentSpec, check_spec, plain, spec_field
from dind.training.data import DataConfig
from dind.training.distributed import init_distributed
from dind.training.fields import one_of
from dind.training.model import ModelConfig
from dind.training.objective import ObjectiveConfig
from dind.training.optim import OptimConfig
from dind.training.overrides import apply_overrides, fold_deprecated, load_mapping
from dind.training.settings import TrainSettings
from dind.training.trainer import TRAINERS
from dind.training.variance import VarianceConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "TrainConfig",
    "VarianceConfig",
    "apply_overrides",
    "load_mapping",
    "load_plugins",
]

DistributedMode = Literal["none", "ddp", "fsdp"]
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "objective": ObjectiveConfig,
    "variance": VarianceConfig,
    "optim": OptimConfig,
}
# what TrainConfig.build passes a trainer itself: never a trainer option
_TRAINER_ARGUMENTS = (
    "model",
    "objective",
    "data",
    "optimizer",
    "scheduler",
    "context",
    "config",
    "overwrite",
)


def _plugin_specs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"plugins must be a list of module names or .py paths (got {value!r})")
    bad = [spec for spec in value if not isinstance(spec, str) or not spec.strip()]
    if bad:
        raise ValueError(f"plugins must hold non-empty strings (got {bad!r})")
    return tuple(value)


def load_plugins(specs: Sequence[str]) -> None:
    """Import plugin files or modules (``dind.plugins.load_plugin``; loading one again is a no-op)."""
    for spec in _plugin_specs(specs):
        load_plugin(spec)


def _trainer_options(factory: Callable[..., Any]) -> list[str]:
    # a trainer's own keyword-only parameters; the settings and components are passed by build()
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return []
    settings = {field.name for field in attrs.fields(TrainSettings)}
    return [
        name
        for name, p in parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and name not in settings
        and name not in _TRAINER_ARGUMENTS
    ]


@attrs.frozen
class TrainConfig(TrainSettings):
    """One training run: the ``TrainSettings`` fields (top level) and the component sections.
    ``trainer``: a TRAINERS spec (its options: the trainer class's own keyword-only parameters);
    ``plugins``: modules or .py files imported before any name is looked up."""

    model: ModelConfig = attrs.field(factory=ModelConfig)
    data: DataConfig = attrs.field(factory=DataConfig)
    objective: ObjectiveConfig = attrs.field(factory=ObjectiveConfig)
    optim: OptimConfig = attrs.field(factory=OptimConfig)
    trainer: ComponentSpec = spec_field(TRAINERS, key="trainer", default="default", accepted=_trainer_options)
    plugins: tuple[str, ...] = attrs.field(default=(), converter=_plugin_specs)
    distributed: DistributedMode = attrs.field(default="none", validator=one_of("none", "ddp", "fsdp"))
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the canonical spelling: the component sections first, then the settings."""
        return {name: _as_data(getattr(self, name)) for name in _ORDER}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """A config from plain data (any spelling). Its ``plugins`` are loaded first, so the names
        they register are checked like the built-in ones."""
        if not isinstance(data, Mapping):
            raise ValueError(f"config section '(top)' must be a mapping (got {data!r})")
        load_plugins(data.get("plugins", ()))
        return _structure(cls, fold_deprecated(plain(data), _default_spec), "")

    @classmethod
    def from_file(cls, path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
        return cls.from_dict(apply_overrides(load_mapping(path), overrides))

    def build(self, *, overwrite: bool = False, model: nn.Module | None = None) -> Any:
        """The components this config describes and the trainer (``trainer``) holding them;
        ``model``: a ready model instead of ``self.model``'s; ``overwrite``: replace a run already in
        ``out_dir``. Each section builds alone too (``self.objective.build(length)``, ...)."""
        load_plugins(self.plugins)
        trainer_class = check_spec(TRAINERS, self.trainer, key="trainer", accepted=_trainer_options)
        settings = TrainSettings.from_config(self)
        context = init_distributed(self.distributed, self.device)
        settings.batch_geometry(context.world_size)  # fail before any work
        torch.manual_seed(self.seed)  # the same initial weights on every rank
        model = self.model.build() if model is None else model
        torch.manual_seed(self.seed + context.rank)  # dropout differs between ranks
        tokenizer = self.data.build_tokenizer(model)
        length = self.data.sequence_length(model)
        objective = self.objective.build(length)
        record_draft_block_size(model, objective)
        data = self.data.build(tokenizer, length, context, self.seed)
        optimizer, scheduler = self.optim.build(model, self.steps, context.device)
        return trainer_class(
            model,
            objective,
            data,
            optimizer,
            scheduler,
            context=context,
            config=self,
            overwrite=overwrite,
            **self.trainer.options,
            **attrs.asdict(settings, recurse=False),
        )


def record_draft_block_size(model: nn.Module, objective: Any) -> None:
    """Write the smallest block size of the training mix (the stage-1 drafting block: 4 for
    ``bimodal(4, L, 0.1)``) into the model's config, so its exported config.json states it
    (BD3-LM's own model class reads ``block_size``; without it, it falls back to a block of 1)."""
    config = getattr(model, "config", None)
    if config is not None and attrs.has(type(config)) and "block_size" in attrs.fields_dict(type(config)):
        model.config = attrs.evolve(config, block_size=min(objective.block_sizes.support()))


# the sections first, then the pluggable parts, then the rest in field order
_ORDER = [*SECTIONS, "trainer", "plugins"]
_ORDER += [field.name for field in attrs.fields(TrainConfig) if field.name not in _ORDER]


def _as_data(value: Any) -> Any:
    if isinstance(value, ComponentSpec):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_as_data(item) for item in value]
    if attrs.has(type(value)):
        return {field.name: _as_data(getattr(value, field.name)) for field in attrs.fields(type(value))}
    return plain(value)


def _default_spec(section: str, key: str) -> ComponentSpec:
    field = attrs.fields_dict(SECTIONS[section])[key]
    return field.converter(field.default)  # type: ignore[misc]


def _structure(cls: type, data: Any, prefix: str) -> Any:
    """``cls`` from a mapping, its sections recursively; the fields' own converters and validators
    decide about the values (no coercion on the way: ``steps: true`` stays a bool and is refused)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"config section {prefix.rstrip('.') or '(top)'!r} must be a mapping (got {data!r})")
    known = [field.name for field in attrs.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown config keys {[prefix + key for key in unknown]}; known: {sorted(known)}")
    values = {
        key: _structure(SECTIONS[key], value, f"{key}.") if cls is TrainConfig and key in SECTIONS else value
        for key, value in data.items()
    }
    try:
        return cls(**values)
    except (ValueError, TypeError):
        _name_the_unconvertible_key(cls, values, prefix)
        raise


def _name_the_unconvertible_key(cls: type, values: Mapping[str, Any], prefix: str) -> None:
    """A converter's own error ("could not convert string to float: 'abc'") does not say which key:
    find the value a plain converter (float, int, ...) refuses and raise naming its key."""
    fields = attrs.fields_dict(cls)
    for key, value in values.items():
        converter = fields[key].converter
        if converter not in (float, int):
            continue
        try:
            converter(value)
        except (ValueError, TypeError, OverflowError) as error:
            shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
            raise ConfigError(f"{prefix}{key} must be a number (got {shown}: {error})") from None
