"""Training logs where researchers look: TensorBoard and Weights & Biases, besides metrics.jsonl.

The config key ``loggers`` lists ``METRIC_LOGGERS`` specs (default: none)::

    loggers: [tensorboard, {name: wandb, project: dind, mode: offline}]

Each logger receives every record the trainer appends to metrics.jsonl (``kind`` train, eval or
variance, its ``step``, its values) and writes its numeric values as the scalars
``<kind>/<key>`` at that step: ``train/loss``, ``eval/val_nelbo``, ``variance/eps_min``, ... on
the main process only. The packages come with the ``logging`` extra (``pip install
"dind[logging]"``); a logger whose package is missing is an error when the Trainer is built,
before any work.

A logger is a frozen attrs class (its options, validated when built) whose ``open(out_dir, *,
step, config_yaml)`` returns a ``MetricsSink`` (``write(record)``, ``close()``). A new one (MLflow,
Aim, ...) is one such class registered in ``METRIC_LOGGERS`` (or through the entry-point group
``dind.metric_loggers``).
"""

from __future__ import annotations

import importlib
import math
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import yaml

from dind.errors import UserError
from dind.registry import Registry
from dind.training.components import ComponentSpec, build_component
from dind.training.fields import one_of


@runtime_checkable
class MetricsSink(Protocol):
    """An open log: ``write`` one metrics record (``kind``, ``step`` and values); ``close`` at the end."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


METRIC_LOGGERS: Registry[Any] = Registry("metric_loggers", entry_point_group="dind.metric_loggers")


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """``{"<kind>/<key>": value}`` for every finite number of a record (``step`` and ``kind`` are
    not values; a non-finite value, written null in metrics.jsonl, is left out)."""
    kind = record.get("kind", "metrics")
    return {
        f"{kind}/{key}": float(value)
        for key, value in record.items()
        if key not in ("kind", "step")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def _require(module: str, logger: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UserError(
            f"loggers: {logger!r} needs the {module.split('.')[0]} package, which is not installed "
            f'({error}); pip install "dind[logging]" or remove {logger!r} from loggers'
        ) from None


@METRIC_LOGGERS.register("tensorboard")
@attrs.frozen
class TensorBoard:
    """Event files in ``<out_dir>/<subdir>`` (view: ``tensorboard --logdir <out_dir>/tensorboard``),
    flushed with every record; the config as text. A resumed run drops the events of the steps
    after the one it resumes from (``purge_step``), as metrics.jsonl drops their lines."""

    subdir: str = attrs.field(default="tensorboard", validator=attrs.validators.min_len(1))

    def require(self) -> None:
        _require("tensorboard", "tensorboard")

    def open(self, out_dir: str | Path, *, step: int, config_yaml: str | None) -> MetricsSink:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(
            log_dir=str(Path(out_dir) / self.subdir), purge_step=step + 1 if step else None
        )
        if config_yaml is not None and not step:
            writer.add_text("config", "```yaml\n" + config_yaml + "```")
        return _TensorBoardSink(writer)


class _TensorBoardSink:
    def __init__(self, writer: Any):
        self.writer = writer

    def write(self, record: Mapping[str, Any]) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, global_step=int(record["step"]))
        self.writer.flush()  # a killed run keeps every record written, as metrics.jsonl does

    def close(self) -> None:
        self.writer.close()


WandbMode = Literal["offline", "online"]


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"tags must be a list of strings (got {value!r})")
    return tuple(str(tag) for tag in value)


@METRIC_LOGGERS.register("wandb")
@attrs.frozen
class Wandb:
    """A Weights & Biases run in ``<out_dir>/wandb``. ``mode``: ``offline`` (the default: nothing
    leaves the machine; ``wandb sync <out_dir>/wandb/offline-run-*`` uploads it later) or ``online``.
    ``project``; ``name`` (default: the out_dir's name); ``tags``. The config is the run's config.
    The run id is kept in ``<out_dir>/wandb/run_id``, so a resumed run continues the same W&B run."""

    project: str = "dind"
    name: str | None = None
    mode: WandbMode = attrs.field(default="offline", validator=one_of("offline", "online"))
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)

    def require(self) -> None:
        _require("wandb", "wandb")

    def open(self, out_dir: str | Path, *, step: int, config_yaml: str | None) -> MetricsSink:
        import wandb

        if self.mode == "offline":  # process-wide too, or wandb's own telemetry still looks up its server
            wandb.setup(settings=wandb.Settings(mode="offline"))
        directory = Path(out_dir) / "wandb"
        directory.mkdir(parents=True, exist_ok=True)
        id_file = directory / "run_id"
        if not id_file.is_file():
            id_file.write_text(secrets.token_hex(8) + "\n")
        run = wandb.init(
            project=self.project,
            name=self.name or Path(out_dir).resolve().name,
            tags=list(self.tags),
            dir=str(out_dir),
            mode=self.mode,
            id=id_file.read_text().strip(),
            resume="allow",
            config=yaml.safe_load(config_yaml) if config_yaml is not None else None,
            settings=wandb.Settings(console="off", silent=True),
        )
        return _WandbSink(run)


class _WandbSink:
    def __init__(self, run: Any):
        self.run = run

    def write(self, record: Mapping[str, Any]) -> None:
        self.run.log(scalars(record), step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()


def logger_specs(value: Any) -> tuple[ComponentSpec, ...]:
    """The ``loggers`` setting: a list of specs (a bare name or ``{name: ..., **options}``)."""
    if isinstance(value, str | Mapping | ComponentSpec) or not isinstance(value, Sequence):
        raise ValueError(
            f"loggers must be a list of logger specs, e.g. [tensorboard, {{name: wandb, mode: offline}}] "
            f"(got {value!r})"
        )
    return tuple(ComponentSpec.parse(item, key=f"loggers[{index}]") for index, item in enumerate(value))


def check_logger_specs(instance: Any, attribute: attrs.Attribute, value: tuple[ComponentSpec, ...]) -> None:
    names = [spec.name for spec in value]
    if len(set(names)) != len(names):
        raise ValueError(f"loggers must name each logger once (got {names})")
    for index, spec in enumerate(value):  # options checked by name and value (no side effects)
        key = f"loggers[{index}]"
        try:
            build_component(METRIC_LOGGERS, spec, key=key)
        except (ValueError, TypeError) as error:
            if str(error).startswith(key):
                raise
            raise type(error)(f"{key} {spec.name!r}: {error}") from None


def build_loggers(specs: Sequence[ComponentSpec]) -> list[Any]:
    """The loggers the specs name, their options validated and their packages present."""
    loggers = [build_component(METRIC_LOGGERS, spec, key=f"loggers[{i}]") for i, spec in enumerate(specs)]
    for logger in loggers:
        logger.require()
    return loggers


@contextmanager
def opened_sinks(
    loggers: Sequence[Any], out_dir: str | Path, *, step: int, config_yaml: str | None
) -> Iterator[list[MetricsSink]]:
    """Each logger opened on ``out_dir`` for a run at ``step``; all closed at the end."""
    with ExitStack() as stack:
        sinks = []
        for logger in loggers:
            sink = logger.open(out_dir, step=step, config_yaml=config_yaml)
            stack.callback(sink.close)
            sinks.append(sink)
        yield sinks
