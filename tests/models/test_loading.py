"""dind.load and strict checkpoint reading: bad config.json names the file and field, sharded
safetensors load, pickled weights are never unpickled, hub ids fail clearly offline."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import dind
from dind.models import CheckpointError, DiT, HubUnavailableError, build, save_pretrained

REFERENCE_KEYS = {  # REFERENCE.md: kuleshov-group/bd3lm-owt-block_size4's config.json
    "architectures",
    "attn_backend",
    "block_size",
    "cond_dim",
    "cross_attn",
    "dropout",
    "hidden_dim",
    "model_length",
    "model_type",
    "n_blocks",
    "n_heads",
    "return_dict",
    "sampling_eps_max",
    "sampling_eps_min",
    "time_conditioning",
    "var_min",
    "vocab_size",
}


@pytest.fixture
def saved(tmp_path):
    model = build("micro", init="random", generator=torch.Generator().manual_seed(1)).eval()
    return model, save_pretrained(model, tmp_path / "ckpt")


def edit_config(directory, **changes):
    path = directory / "config.json"
    content = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            content.pop(key)
        else:
            content[key] = value
    path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hidden_dim": ...}, "hidden_dim"),
        ({"vocab_size": ...}, "vocab_size"),
        ({"hidden_dim": "64"}, "hidden_dim must be an integer"),
        ({"n_blocks": 2.0}, "n_blocks must be an integer"),
        ({"dropout": "0.1"}, "dropout must be a number"),
        ({"time_conditioning": 0}, "time_conditioning must be true or false"),
        ({"causal": True}, "autoregressive"),
        ({"adaln": False}, "adaln is false"),
        ({"model_type": "llama"}, "model_type must be"),
        ({"attn_backend": "tilelang"}, "attn_backend='sdpa'"),
        ({"n_heads": 3}, "n_heads must divide hidden_dim"),
        ({"sampling_eps_min": 0.9, "sampling_eps_max": 0.5}, "sampling_eps_min must be below"),
    ],
)
def test_bad_config_names_file_and_field(saved, changes, field):
    _, directory = saved
    path = edit_config(directory, **changes)
    with pytest.raises(CheckpointError) as error:
        dind.load(directory)
    assert str(path) in str(error.value) and field in str(error.value)


def test_missing_shape_field_is_not_defaulted_and_typos_are_suggested(saved):
    _, directory = saved
    content = json.loads((directory / "config.json").read_text())
    content["hiden_dim"] = content.pop("hidden_dim")
    (directory / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="must set hidden_dim .*misspelt 'hidden_dim'"):
        dind.load(directory)


def test_bad_json_names_the_line(saved):
    _, directory = saved
    (directory / "config.json").write_text('{\n  "vocab_size": 258,\n}')
    with pytest.raises(CheckpointError, match=r"config.json is not valid JSON .*line 3"):
        dind.load(directory)


def test_sharded_safetensors_load_identically(saved):
    model, directory = saved
    sharded = save_pretrained(model, directory.parent / "sharded", max_shard_size=20_000)
    assert (sharded / "model.safetensors.index.json").is_file() and not (
        sharded / "model.safetensors"
    ).exists()
    assert len(list(sharded.glob("model-*.safetensors"))) > 1
    tokens = torch.randint(0, 257, (2, 12), generator=torch.Generator().manual_seed(0))
    assert torch.equal(dind.load(sharded)(tokens), model(tokens))
    # saving unsharded over it removes the shards, so no stale weights can win
    save_pretrained(model, sharded)
    assert sorted(p.name for p in sharded.iterdir()) == [
        "checksums.sha256",
        "config.json",
        "model.safetensors",
    ]
    assert "model-" not in (sharded / "checksums.sha256").read_text()  # the shards' entries went with them


def test_shard_missing_from_index_is_named(saved):
    model, directory = saved
    sharded = save_pretrained(model, directory.parent / "sharded", max_shard_size=20_000)
    victim = sorted(sharded.glob("model-*.safetensors"))[0]
    victim.unlink()
    with pytest.raises(CheckpointError, match=f"shard {victim.name}"):
        dind.load(sharded)


def test_pickled_weights_are_never_unpickled(saved, monkeypatch):
    _, directory = saved
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(b"not read")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be called")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match="never unpickles.*save_file"):
        dind.load(directory)
    with pytest.raises(CheckpointError, match="never unpickles"):
        dind.load(directory / "pytorch_model.bin")


def test_truncated_safetensors_is_named(saved):
    _, directory = saved
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (directory / "checksums.sha256").unlink()  # as a checkpoint from elsewhere: no manifest
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        dind.load(directory)


def test_hub_unreachable_says_so(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubUnavailableError, match="could not download 'someone/model' .*no local directory"):
        dind.load("someone/model")
    with pytest.raises(FileNotFoundError, match="a preset .*micro.*no such directory"):
        dind.load("./not/here/either")


def test_presets_are_seeded_and_options_checked():
    first, second = dind.load("micro"), dind.load("micro", seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    assert not first.training
    assert dind.load("micro", dtype="bfloat16").backbone.blocks[0].attn_qkv.weight.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be"):
        dind.load("micro", dtype="int8")
    with pytest.raises(ValueError, match="device must be"):
        dind.load("micro", device="gpu")


def test_init_and_seed_refused_for_checkpoints(saved):
    _, directory = saved
    with pytest.raises(ValueError, match="preset names only"):
        dind.load(directory, seed=3)


def test_hub_mixin_round_trip_and_reference_keys(saved, tmp_path):
    model, _ = saved
    model.save_pretrained(tmp_path / "repo")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert REFERENCE_KEYS <= set(config) and config["block_size"] == 128
    assert config["auto_map"]["AutoModelForMaskedLM"].endswith("modeling_bd3lm.BD3LM")
    assert set(load_file(str(tmp_path / "repo" / "model.safetensors"))) == set(model.state_dict())
    assert all(key.startswith("backbone.") or key.startswith("sampling_eps") for key in model.state_dict())
    loaded = DiT.from_pretrained(tmp_path / "repo")
    tokens = torch.randint(0, 257, (2, 16), generator=torch.Generator().manual_seed(2))
    assert torch.equal(loaded(tokens), model(tokens))
    assert torch.equal(loaded(tokens, block_size=4), model.logits(tokens, block_size=4))


def test_push_to_hub_uploads_the_bd3lm_folder(saved, monkeypatch):
    """No network here: HfApi is replaced, and the folder it is handed is inspected."""
    import huggingface_hub.hub_mixin as hub_mixin

    model, _ = saved
    seen = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("Url", (), {"repo_id": repo_id})()

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            seen["repo"] = repo_id
            seen["files"] = sorted(p.name for p in folder_path.iterdir())
            seen["config"] = json.loads((folder_path / "config.json").read_text())
            seen["keys"] = set(load_file(str(folder_path / "model.safetensors")))
            return "https://hub/commit"

    monkeypatch.setattr(hub_mixin, "HfApi", FakeApi)
    assert model.push_to_hub("me/micro") == "https://hub/commit"
    assert seen["repo"] == "me/micro"
    assert seen["files"] == ["README.md", "checksums.sha256", "config.json", "model.safetensors"]
    assert REFERENCE_KEYS <= set(seen["config"]) and seen["keys"] == set(model.state_dict())


def test_tensors_must_be_floating_point(saved):
    _, directory = saved
    state = load_file(str(directory / "model.safetensors"))
    state["sampling_eps_min"] = torch.tensor(1)
    save_file(state, str(directory / "model.safetensors"))
    (directory / "checksums.sha256").unlink()
    with pytest.raises(CheckpointError, match="non-floating-point tensors"):
        dind.load(directory)


# --- shipped models and training run directories ----------------------------------------------


def _never_the_hub(monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("a shipped name went to the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def test_shipped_model_names_load_the_packaged_checkpoint_in_fp32_on_cpu(monkeypatch, tmp_path):
    from dind.shipped import ASSETS

    _never_the_hub(monkeypatch)
    monkeypatch.chdir(tmp_path)
    demo, by_name = dind.load("demo"), dind.load("tiny-shakespeare")
    by_path = dind.load(ASSETS["demo"].path())
    weight = "backbone.blocks.0.attn_qkv.weight"
    assert torch.equal(demo.state_dict()[weight], by_path.state_dict()[weight])
    assert torch.equal(by_name.state_dict()[weight], by_path.state_dict()[weight])
    assert {p.dtype for p in demo.parameters()} == {torch.float32}  # stored bf16, computed fp32 on CPU
    with pytest.raises(ValueError, match=r"path_or_preset must name a model \(got 'judge-shakespeare'"):
        dind.load("judge-shakespeare")


def test_a_local_directory_named_like_an_asset_wins(saved, tmp_path, monkeypatch):
    model, _ = saved
    save_pretrained(model, tmp_path / "demo")
    monkeypatch.chdir(tmp_path)
    loaded = dind.load("demo")
    assert (
        loaded.config.hidden_dim == model.config.hidden_dim != dind.load("tiny-shakespeare").config.hidden_dim
    )


def test_an_unknown_name_lists_presets_and_shipped_models(tmp_path, monkeypatch):
    _never_the_hub(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"a shipped model \(tiny-shakespeare \(= demo\)\).*got 'nonesuch'"
    ):
        dind.load("nonesuch")


def test_a_training_run_directory_loads_its_latest_checkpoint_in_one_line(saved, tmp_path, capsys):
    from dind.models.sources import RUN_CHECKPOINTS
    from dind.training.checkpointing import LATEST, checkpoint_root

    assert RUN_CHECKPOINTS[0] == str(checkpoint_root(".") / LATEST)  # the trainer's layout
    model, _ = saved
    run = tmp_path / "run"
    save_pretrained(model, run / "checkpoints" / "latest")
    (run / "config.yaml").write_text("steps: 1\n")
    loaded = dind.load(run)
    assert torch.equal(loaded.backbone.vocab_embed.embedding, model.backbone.vocab_embed.embedding)
    err = capsys.readouterr().err
    latest = run / "checkpoints" / "latest"
    assert err == f"dind: {run} is a training run directory: loading its latest checkpoint {latest}\n"
    (run / "checkpoints" / "latest").rename(run / "checkpoints" / "latest.old")  # a save interrupted
    assert torch.equal(dind.load(run).backbone.vocab_embed.embedding, model.backbone.vocab_embed.embedding)


def test_a_run_directory_without_a_checkpoint_says_so(tmp_path):
    (tmp_path / "config.yaml").write_text("steps: 1\n")
    with pytest.raises(FileNotFoundError, match="training run directory without a checkpoint yet"):
        dind.load(tmp_path)
