import pytest
import torch

from dind.training import atomic_directory, find_checkpoint
from dind.training.checkpointing import TRAINER_STATE, restore_rng_state, rng_state
from dind.training.metrics import MetricsLog, read_metrics


def test_atomic_directory_replaces_only_on_success(tmp_path):
    final = tmp_path / "checkpoints" / "latest"
    with atomic_directory(final) as staged:
        staged.mkdir()
        (staged / "a").write_text("first")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_directory(final) as staged:
            staged.mkdir()
            (staged / "a").write_text("second")
            raise RuntimeError("boom")
    assert (final / "a").read_text() == "first"
    with atomic_directory(final) as staged:
        staged.mkdir()
        (staged / "a").write_text("third")
    assert (final / "a").read_text() == "third"
    assert sorted(p.name for p in final.parent.iterdir()) == ["latest"]  # no temporary or .old left


def test_find_checkpoint_accepts_run_dirs_and_the_old_copy(tmp_path):
    old = tmp_path / "checkpoints" / "latest.old"
    old.mkdir(parents=True)
    (old / TRAINER_STATE).write_bytes(b"")
    assert find_checkpoint(tmp_path) == old  # interrupted between the two renames
    with pytest.raises(FileNotFoundError, match=TRAINER_STATE):
        find_checkpoint(tmp_path / "elsewhere")


def test_rng_state_round_trip():
    generator = torch.Generator().manual_seed(3)
    state = rng_state(generator)
    expected = (torch.rand(3), torch.rand(3, generator=generator))
    restore_rng_state(generator, state)
    assert torch.equal(torch.rand(3), expected[0]) and torch.equal(
        torch.rand(3, generator=generator), expected[1]
    )


def test_metrics_jsonl_drops_non_finite_and_skips_when_disabled(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write({"step": 1, "loss": torch.tensor(2.5), "bad": float("nan")})
    MetricsLog(tmp_path / "other.jsonl", enabled=False).write({"step": 1})
    assert read_metrics(tmp_path / "m.jsonl") == [{"step": 1, "loss": 2.5, "bad": None}]
    assert not (tmp_path / "other.jsonl").exists()


def test_a_checkpoint_records_and_checks_the_sha256_of_its_files(tmp_path):
    from dind.errors import UserError
    from dind.models import CheckpointError, build, from_pretrained
    from dind.training.checkpointing import read_trainer_state, write_checkpoint

    model = build("micro", init="random", generator=torch.Generator().manual_seed(0), dropout=0.0)
    directory = write_checkpoint(
        tmp_path / "latest", export_model=model, trainer_state={"step": 3}, config_yaml=None
    )
    lines = (directory / "checksums.sha256").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in lines) == ["model.safetensors", TRAINER_STATE]
    assert read_trainer_state(directory) == {"step": 3}
    torch.save({"step": 4}, directory / TRAINER_STATE)  # bytes changed after the save
    with pytest.raises(UserError, match=rf"{TRAINER_STATE} is corrupted"):
        read_trainer_state(directory)
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        from_pretrained(directory)


@pytest.mark.parametrize("kind", ["truncated", "foreign pickle", "not a dict"])
def test_a_truncated_or_foreign_trainer_state_is_named(tmp_path, kind):
    import pickle

    from dind.errors import UserError
    from dind.training.checkpointing import read_trainer_state

    path = tmp_path / TRAINER_STATE
    torch.save({"step": 1, "model": {"w": torch.zeros(3)}}, path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "foreign pickle":
        path.write_bytes(pickle.dumps(pytest.approx(1.0)))  # an object: must never be unpickled
    else:
        torch.save([1, 2], path)
    with pytest.raises(UserError, match=rf"{TRAINER_STATE} is not a dind training state") as caught:
        read_trainer_state(tmp_path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
