"""save_pretrained / from_pretrained: round trip, BD3-LM layout, one clear error for bad tensors."""

import json

import attrs
import pytest
import torch
from safetensors.torch import load_file, save_file

from dind.models import CheckpointError, build, from_pretrained, load_model, save_pretrained


@pytest.fixture
def saved(tmp_path, generator):
    model = build("micro", init="random", generator=generator).eval()
    model.sampling_eps_min.fill_(0.3)
    model.sampling_eps_max.fill_(0.8)
    save_pretrained(model, tmp_path / "checkpoint")
    return model, tmp_path / "checkpoint"


def test_round_trip_gives_identical_logits(saved, generator):
    model, directory = saved
    loaded = from_pretrained(directory)
    # block_size is always written: the model's length (one global block) when the config had none
    assert loaded.config == attrs.evolve(model.config, block_size=128) and not loaded.training
    tokens = torch.randint(0, 258, (2, 16), generator=generator)
    assert torch.equal(loaded.logits(tokens), model.logits(tokens))
    assert torch.equal(loaded.logits(tokens, block_size=4), model.logits(tokens, block_size=4))
    assert float(loaded.sampling_eps_min) == pytest.approx(0.3) and float(
        loaded.sampling_eps_max
    ) == pytest.approx(0.8)


def test_files_are_bd3lm_format_and_no_temporaries_remain(saved):
    model, directory = saved
    assert sorted(path.name for path in directory.iterdir()) == [
        "checksums.sha256",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["BD3LM"] and config["sampling_eps_min"] == 0.3
    assert set(load_file(str(directory / "model.safetensors"))) == set(model.state_dict())
    (directory.parent / "plain").write_text("")  # the files get the permissions of ordinary files
    ordinary = (directory.parent / "plain").stat().st_mode & 0o777
    assert {(directory / name).stat().st_mode & 0o777 for name in ("config.json", "model.safetensors")} == {
        ordinary
    }


def test_bad_tensors_are_listed_in_one_error(saved):
    _, directory = saved
    state = load_file(str(directory / "model.safetensors"))
    del state["backbone.blocks.0.norm1.weight"], state["sampling_eps_max"]
    state["backbone.extra"] = torch.zeros(1)
    state["backbone.blocks.1.attn_out.weight"] = torch.zeros(3, 3)
    save_file(state, str(directory / "model.safetensors"))
    (directory / "checksums.sha256").unlink()  # as a checkpoint from elsewhere: no manifest
    with pytest.raises(CheckpointError) as error:
        from_pretrained(directory)
    message = str(error.value)
    for expected in (
        "missing keys (2)",
        "backbone.blocks.0.norm1.weight",
        "sampling_eps_max",
        "unexpected keys (1)",
        "backbone.extra",
        "backbone.blocks.1.attn_out.weight: checkpoint (3, 3) vs model (64, 64)",
    ):
        assert expected in message


def test_dtype_casts_parameters_only_and_overrides_apply(saved):
    _, directory = saved
    loaded = from_pretrained(directory, dtype=torch.bfloat16, attn_backend="eager")
    assert loaded.backbone.blocks[0].attn_qkv.weight.dtype == torch.bfloat16
    assert loaded.backbone.rotary_emb.inv_freq.dtype == torch.float32
    assert loaded.config.attn_backend == "eager"


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be a checkpoint directory or an 'owner/name' hub id"):
        from_pretrained(tmp_path / "nowhere" / "deeper")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="must contain config.json"):
        from_pretrained(tmp_path / "empty")


def test_hub_id_without_huggingface_hub_says_to_pass_a_directory(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name == "huggingface_hub":
            raise ImportError("blocked for the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(ImportError, match="or pass a local directory"):
        from_pretrained("kuleshov-group/bd3lm-owt-block_size4")


def test_load_model_takes_presets_and_directories(saved):
    model, directory = saved
    assert load_model("micro", device="meta").config.hidden_dim == 64
    assert load_model(directory).config.hidden_dim == model.config.hidden_dim


def test_a_changed_byte_in_the_weights_is_named(saved):
    _, directory = saved
    manifest = (directory / "checksums.sha256").read_text().splitlines()
    assert [line.split("  ")[1] for line in manifest] == ["model.safetensors"]
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of a tensor's bytes: still a readable safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors is corrupted: its SHA-256 is"):
        from_pretrained(directory)
    (directory / "checksums.sha256").unlink()  # without a manifest (a public checkpoint) it loads
    from_pretrained(directory)


def test_sharded_weights_are_checked_per_shard(saved, tmp_path):
    model, _ = saved
    sharded = save_pretrained(model, tmp_path / "sharded", max_shard_size=20_000)
    names = {line.split("  ")[1] for line in (sharded / "checksums.sha256").read_text().splitlines()}
    assert names == {p.name for p in sharded.glob("model*.safetensors*")}
    victim = sorted(sharded.glob("model-*.safetensors"))[1]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{victim.name} is corrupted"):
        from_pretrained(sharded)


def test_a_malformed_manifest_is_named(saved):
    _, directory = saved
    (directory / "checksums.sha256").write_text("not a checksum line\n")
    with pytest.raises(CheckpointError, match=r"checksums.sha256 line 1 is not '<sha256>  <file name>'"):
        from_pretrained(directory)
