"""The training configuration: frozen attrs classes and their YAML/JSON round trip.

Names (presets, registries) stay strings here; ``dind.training.setup`` turns them into objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import yaml
from cattrs.gen import make_dict_structure_fn

from dind.data.packing import ChunkFormat
from dind.training.overrides import apply_overrides, load_mapping
from dind.validation import non_negative_int, positive_int, positive_number

Precision = Literal["auto", "fp32", "bf16"]
DistributedMode = Literal["none", "ddp", "fsdp"]


# config files spell None as YAML's null
_positive_int_or_null = positive_int.or_none("null")
_positive_number_or_null = positive_number.or_none("null")


def _float_or_none(value: Any) -> float | None:
    # YAML 1.1 reads "1e-4" (no dot) as a string
    return None if value is None else float(value)


def _one_of(*options: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in options:
            raise ValueError(f"{attribute.name} must be one of {', '.join(options)} (got {value!r})")

    return check


def _finite(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number (got {value})")


def _options() -> Any:
    return attrs.field(factory=dict, converter=dict)


@attrs.frozen
class ModelConfig:
    """``preset``: a ``dind.models.build`` name, with ``options`` as keyword overrides; ``init``: a
    BD3-LM-format checkpoint directory to start from (fine-tuning) instead of a fresh preset."""

    preset: str = "tiny"
    options: dict[str, Any] = _options()
    init: str | None = None


@attrs.frozen
class DataConfig:
    """``length`` null = the model's ``model_length``. ``cache_dir`` null = ~/.cache/dind/tokens."""

    corpus: str = "text"
    corpus_options: dict[str, Any] = _options()
    tokenizer: str = "gpt2"
    length: int | None = attrs.field(default=None, validator=_positive_int_or_null)
    chunk_format: ChunkFormat = attrs.field(default="bos", validator=_one_of("plain", "bos", "bos_eos"))
    validation_fraction: float = attrs.field(
        default=0.05, converter=float, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )
    split_seed: int = 0
    cache_dir: str | None = None
    shuffle: bool = True


@attrs.frozen
class ObjectiveConfig:
    """``block_sizes``: a BLOCK_SIZE_DISTRIBUTIONS name with ``block_size_options``, or the text form
    alone ("bimodal:4,1024,0.1", "fixed:4"). ``block_size_draw``: one size per batch or per row."""

    block_sizes: str = "bimodal:4,1024,0.1"
    block_size_options: dict[str, Any] = _options()
    block_size_draw: Literal["batch", "sample"] = attrs.field(
        default="sample", validator=_one_of("batch", "sample")
    )
    schedule: str = "loglinear"
    schedule_options: dict[str, Any] = _options()
    time_sampler: str = "stratified"
    resample: bool = False
    freeze_first_token: bool = True


def _plugin_specs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"plugins must be a list of module names or .py paths (got {value!r})")
    bad = [spec for spec in value if not isinstance(spec, str) or not spec.strip()]
    if bad:
        raise ValueError(f"plugins must hold non-empty strings (got {bad!r})")
    return tuple(value)


def _floats(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _betas(value: Sequence[float]) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"betas must hold two floats (got {value!r})")
    return _floats(value)  # type: ignore[return-value]


@attrs.frozen
class VarianceConfig:
    """BD3-LM's clipped-schedule search. ``every``: optimizer steps between searches (null: only at
    validation when ``at_validation``). ``block_size`` null = the smallest size the mix draws.
    ``widths`` / ``step``: the candidate intervals (the defaults give BD3-LM's 36)."""

    enabled: bool = False
    every: int | None = attrs.field(default=None, validator=_positive_int_or_null)
    at_validation: bool = True
    batches: int = attrs.field(default=8, validator=positive_int)
    block_size: int | None = attrs.field(default=None, validator=_positive_int_or_null)
    seed: int = 0
    widths: tuple[float, ...] = attrs.field(default=(0.5, 0.6, 0.7, 0.8, 0.9), converter=_floats)
    step: float = attrs.field(default=0.05, converter=float, validator=positive_number)


@attrs.frozen
class OptimConfig:
    lr: float = attrs.field(default=3e-4, converter=float, validator=[_finite, positive_number])
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.999), converter=_betas)
    eps: float = attrs.field(default=1e-8, converter=float, validator=positive_number)
    weight_decay: float = attrs.field(default=0.0, converter=float, validator=attrs.validators.ge(0.0))
    lr_schedule: str = "constant"
    lr_schedule_options: dict[str, Any] = _options()
    warmup_steps: int = attrs.field(default=2500, validator=non_negative_int)
    grad_clip: float | None = attrs.field(
        default=1.0, converter=_float_or_none, validator=_positive_number_or_null
    )
    implementation: Literal["auto", "fused", "foreach", "for_loop"] = attrs.field(
        default="auto", validator=_one_of("auto", "fused", "foreach", "for_loop")
    )


@attrs.frozen
class TrainConfig:
    """One training run. ``batch_size`` is global (sequences per optimizer step, all processes);
    each process runs ``micro_batch_size`` rows per forward (null: batch_size / world size) and
    accumulates gradients over batch_size / (micro_batch_size * world size) forwards."""

    model: ModelConfig = attrs.field(factory=ModelConfig)
    data: DataConfig = attrs.field(factory=DataConfig)
    objective: ObjectiveConfig = attrs.field(factory=ObjectiveConfig)
    variance: VarianceConfig = attrs.field(factory=VarianceConfig)
    optim: OptimConfig = attrs.field(factory=OptimConfig)
    ema_decay: float | None = attrs.field(
        default=0.9999,
        converter=_float_or_none,
        validator=attrs.validators.optional([attrs.validators.ge(0.0), attrs.validators.lt(1.0)]),
    )
    trainer: str = "default"
    plugins: tuple[str, ...] = attrs.field(default=(), converter=_plugin_specs)
    steps: int = attrs.field(default=1000, validator=positive_int)
    batch_size: int = attrs.field(default=32, validator=positive_int)
    micro_batch_size: int | None = attrs.field(default=None, validator=_positive_int_or_null)
    precision: Precision = attrs.field(default="auto", validator=_one_of("auto", "fp32", "bf16"))
    activation_checkpointing: bool = False
    compile: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    distributed: DistributedMode = attrs.field(default="none", validator=_one_of("none", "ddp", "fsdp"))
    device: str = "auto"
    seed: int = 0
    out_dir: str = "runs/train"
    log_every: int = attrs.field(default=10, validator=positive_int)
    eval_every: int | None = attrs.field(default=500, validator=_positive_int_or_null)
    eval_batches: int = attrs.field(default=16, validator=positive_int)
    eval_at_start: bool = True
    save_every: int | None = attrs.field(default=1000, validator=_positive_int_or_null)
    keep_every: int | None = attrs.field(default=None, validator=_positive_int_or_null)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def build(self, *, overwrite: bool = False) -> Any:
        """The components and the Trainer this config describes (``dind.training.setup.build_trainer``)."""
        from dind.training.setup import build_trainer

        return build_trainer(self, overwrite=overwrite)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return _structure(cls, data)

    @classmethod
    def from_file(cls, path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
        return cls.from_dict(apply_overrides(load_mapping(path), overrides))


# component fields: a registry name plus its keyword options. Both spellings are accepted,
#   block_sizes: bimodal                      block_sizes: {name: bimodal, draft: 4, ...}
#   block_size_options: {draft: 4, ...}
# and stored in the first (flat) one, so a config round-trips and diffs key by key.
COMPONENTS: dict[str, dict[str, str]] = {
    "model": {"preset": "options"},
    "data": {"corpus": "corpus_options"},
    "objective": {"block_sizes": "block_size_options", "schedule": "schedule_options"},
    "optim": {"lr_schedule": "lr_schedule_options"},
}


def _flatten_components(section: str, data: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(data)
    for key, options_key in COMPONENTS.get(section, {}).items():
        spec = data.get(key)
        if not isinstance(spec, Mapping):
            continue
        where = f"{section}.{key}"
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"{where} must be a registry name or a mapping {{name: <registry name>, **options}} "
                f"(got {dict(spec)!r}: no name)"
            )
        if data.get(options_key):
            raise ValueError(
                f"{where} gives its options inline, so {section}.{options_key} must be empty "
                f"(got {dict(spec)!r} and {data[options_key]!r})"
            )
        data[key] = name
        data[options_key] = {k: v for k, v in spec.items() if k != "name"}
    return data


def _section_hook(cls: type, section: str) -> Any:
    prefix = f"{section}." if section else ""
    structure = make_dict_structure_fn(cls, _CONVERTER)

    def hook(data: Any, _: type) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"config section {prefix or '(top)'!r} must be a mapping (got {data!r})")
        data = _flatten_components(section, data)
        known = [field.name for field in attrs.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"unknown config keys {[prefix + key for key in unknown]}; known: {sorted(known)}"
            )
        return structure(data, cls)

    return hook


# cattrs walks the sections; the values themselves go to attrs as given, so the fields' own
# converters and validators decide (cattrs would turn ``steps: true`` into 1)
_CONVERTER = cattrs.Converter(detailed_validation=False)
_CONVERTER.register_structure_hook_func(lambda kind: not attrs.has(kind), lambda value, _: value)
for _primitive in (int, float, str, bool):  # cattrs dispatches these before the predicate above
    _CONVERTER.register_structure_hook(_primitive, lambda value, _: value)


# the sections first: TrainConfig's generated hook looks theirs up when it is made
for _section, _cls in {
    "model": ModelConfig,
    "data": DataConfig,
    "objective": ObjectiveConfig,
    "variance": VarianceConfig,
    "optim": OptimConfig,
    "": TrainConfig,
}.items():
    _CONVERTER.register_structure_hook(_cls, _section_hook(attrs.resolve_types(_cls), _section))


def _structure(cls: type, data: Mapping[str, Any]) -> Any:
    return _CONVERTER.structure(data, cls)
