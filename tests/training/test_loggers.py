"""TensorBoard and Weights & Biases logging (the ``loggers`` key), with the real packages: the event
files and the offline W&B run are read back and hold what metrics.jsonl holds."""

import json
import math
import re
from pathlib import Path

import pytest

from dind.errors import UserError
from dind.training import TrainConfig
from dind.training.loggers import METRIC_LOGGERS, MetricsSink, build_loggers, scalars
from dind.training.metrics import read_metrics


def test_scalars_are_the_finite_numbers_of_a_record_under_their_kind():
    record = {"kind": "eval", "step": 4, "val_nelbo": 2.5, "val_ppl_bound": None, "flag": True, "x": math.inf}
    assert scalars(record) == {"eval/val_nelbo": 2.5}
    assert scalars({"kind": "train", "step": 1, "loss": 3, "lr": 1e-3}) == {
        "train/loss": 3.0,
        "train/lr": 1e-3,
    }


def test_the_loggers_key_round_trips_and_bad_specs_name_the_key(make_config):
    config = make_config("loggers=[tensorboard, {name: wandb, project: p, tags: [a, b]}]")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["loggers"] == [
        {"name": "tensorboard"},
        {"name": "wandb", "project": "p", "tags": ["a", "b"]},
    ]
    assert make_config().to_dict()["loggers"] == []
    for override, message in [
        ("loggers=tensorboard", "loggers must be a list of logger specs"),
        ("loggers=[tb]", "loggers[0]: unknown metric_loggers 'tb'"),
        ("loggers=[{name: wandb, mood: x}]", "loggers[0] 'wandb' does not take options ['mood']"),
        (
            "loggers=[{name: wandb, mode: shared}]",
            "loggers[0] 'wandb': mode must be one of offline, online (got 'shared')",
        ),
        (
            "loggers=[{name: wandb, tags: nightly}]",
            "loggers[0] 'wandb': tags must be a list of strings (got 'nightly')",
        ),
        ("loggers=[wandb, wandb]", "loggers must name each logger once"),
    ]:
        with pytest.raises((ValueError, KeyError), match=re.escape(message)):
            make_config(override)


def test_a_missing_package_is_one_error_with_the_extra_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def without_wandb(name, *args):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_wandb)
    with pytest.raises(UserError, match=r"'wandb' needs the wandb package.*pip install \"dind\[logging\]\""):
        build_loggers(TrainConfig.from_dict({"loggers": ["wandb"]}).loggers)


def _trained(make_config, *overrides):
    config = make_config("save_every=null", *overrides)
    config.build().fit()
    return Path(config.out_dir), read_metrics(Path(config.out_dir) / "metrics.jsonl")


def test_tensorboard_event_files_hold_every_metrics_record(make_config):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (the logging extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out_dir, records = _trained(make_config, "loggers=[tensorboard]")
    events = EventAccumulator(str(out_dir / "tensorboard"))
    events.Reload()
    for kind, key in (
        ("train", "loss"),
        ("train", "lr"),
        ("eval", "val_nelbo"),
        ("eval", "val_nelbo_block4"),
    ):
        expected = [(r["step"], r[key]) for r in records if r["kind"] == kind]
        seen = [(event.step, event.value) for event in events.Scalars(f"{kind}/{key}")]
        assert [step for step, _ in seen] == [step for step, _ in expected], key
        assert [value for _, value in seen] == pytest.approx([value for _, value in expected], rel=1e-6), key
    assert "config" in events.Tags()["tensors"] or "config/text_summary" in events.Tags()["tensors"]


def _wandb_records(path: Path) -> list:
    """The records of a W&B ``.wandb`` file: a ':W&B' header, then a LevelDB-style log (32 KiB
    blocks of chunks with a 7-byte header: checksum, length, type) of protobuf ``Record``s."""
    from wandb.proto import wandb_internal_pb2

    data, block, offset, pending, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        length, chunk_type = int.from_bytes(data[offset + 4 : offset + 6], "little"), data[offset + 6]
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if chunk_type in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_writes_its_run_directory_with_every_metrics_record(make_config, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (the logging extra)")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out_dir, records = _trained(make_config, "loggers=[{name: wandb, project: dind-test}]")
    runs = list((out_dir / "wandb").glob("offline-run-*"))
    run_id = (out_dir / "wandb" / "run_id").read_text().strip()
    assert len(runs) == 1 and runs[0].name.endswith(run_id)
    history = []
    for record in _wandb_records(runs[0] / f"run-{run_id}.wandb"):
        if record.WhichOneof("record_type") == "history":
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            history.append(items)
    logged = {
        (h["_step"], key): value for h in history for key, value in h.items() if not key.startswith("_")
    }
    for record in records:
        for key, value in scalars(record).items():
            assert logged[(record["step"], key)] == pytest.approx(value, rel=1e-6), (record["step"], key)


def test_a_resumed_run_replaces_the_tensorboard_steps_after_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (the logging extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dind.training.loggers import TensorBoard

    first = TensorBoard().open(tmp_path, step=0, config_yaml="steps: 5\n")
    for step in range(1, 6):  # steps 4 and 5 ran after the last checkpoint (step 3), then a kill
        first.write({"kind": "train", "step": step, "loss": float(step)})
    first.close()
    resumed = TensorBoard().open(tmp_path, step=3, config_yaml="steps: 5\n")
    for step in (4, 5):
        resumed.write({"kind": "train", "step": step, "loss": 10.0 * step})
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    seen = [(event.step, event.value) for event in events.Scalars("train/loss")]
    assert seen == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]  # each step once, the resumed values


def test_overwrite_clears_the_loggers_directories_with_the_run(tmp_path):
    from dind.training.rundir import clear_run, holds_run

    for name in ("tensorboard", "wandb"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "events").write_text("old run")
    assert holds_run(tmp_path)
    clear_run(tmp_path)
    assert not holds_run(tmp_path) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", METRIC_LOGGERS.names())
def test_every_registered_logger_builds_by_name_and_opens_a_sink_that_writes_into_out_dir(
    name, tmp_path, monkeypatch
):
    # the contract of a logger: built from its name alone, require() names its package, open() writes
    # under out_dir only, and the sink takes any metrics record, then closes
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = METRIC_LOGGERS.build(name)
    try:
        logger.require()
    except UserError as error:
        pytest.skip(str(error))
    sink = logger.open(tmp_path / "run", step=0, config_yaml="steps: 2\n")
    assert isinstance(sink, MetricsSink)
    sink.write({"kind": "train", "step": 1, "loss": 2.0, "lr": None})
    sink.write({"kind": "eval", "step": 2, "val_nelbo": 1.5})
    sink.close()
    assert any(path.is_file() for path in (tmp_path / "run").rglob("*"))
    assert [path.name for path in tmp_path.iterdir()] == ["run"]


OFFLINE_RUN = """
import atexit, socket, sys
lookups = []
atexit.register(lambda: print("lookups", lookups))  # registered first, so it runs after wandb's exit hooks
resolve = socket.getaddrinfo
socket.getaddrinfo = lambda host, *args, **kwargs: lookups.append(host) or resolve(host, *args, **kwargs)
from dind.training.loggers import Wandb
sink = Wandb().open(sys.argv[1], step=0, config_yaml="steps: 1")
sink.write({"kind": "train", "step": 1, "loss": 1.0})
sink.close()
"""


def test_wandb_offline_resolves_no_host_name_until_the_process_ends(tmp_path):
    # in a fresh process: wandb's own telemetry exports from a background thread, as late as exit
    pytest.importorskip("wandb", reason="wandb is not installed (the logging extra)")
    import os
    import subprocess
    import sys

    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_MODE", None)
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_RUN, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "lookups []"
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
