"""Bad checkpoints and model specs: config.json, weights files, shards, hub ids, dind.load options."""

from __future__ import annotations

import json
from pathlib import Path


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def _saved(tmp: Path, **save) -> Path:
    import torch

    from dind.models import build, save_pretrained

    model = build("micro", init="random", generator=torch.Generator().manual_seed(0))
    return save_pretrained(model, tmp / "ckpt", **save)


def _load(path, **kwargs):
    import dind

    return dind.load(path, **kwargs)


def _config(**changes):
    def action(tmp: Path):
        directory = _saved(tmp)
        path = directory / "config.json"
        content = json.loads(path.read_text())
        for key, value in changes.items():
            if value is ...:
                content.pop(key)
            else:
                content[key] = value
        path.write_text(json.dumps(content))
        _load(directory)

    return action


def _text(text: str):
    def action(tmp: Path):
        directory = _saved(tmp)
        (directory / "config.json").write_text(text)
        _load(directory)

    return action


def _files(edit):
    def action(tmp: Path):
        directory = _saved(tmp)
        edit(directory)
        (directory / "checksums.sha256").unlink(missing_ok=True)  # as from elsewhere: the parsers speak
        _load(directory)

    return action


def _pickled(directory: Path):
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")


def _sharded(edit):
    def action(tmp: Path):
        directory = _saved(tmp, max_shard_size=20_000)
        edit(directory)
        _load(directory)

    return action


def _index(content):
    return lambda d: (d / "model.safetensors.index.json").write_text(json.dumps(content))


def _tensor(name, value):
    def edit(directory: Path):
        from safetensors.torch import load_file, save_file

        state = load_file(str(directory / "model.safetensors"))
        if value is None:
            del state[name]
        else:
            state[name] = value()
        save_file(state, str(directory / "model.safetensors"))

    return edit


def _torch(expression):
    return lambda: eval(expression, {"torch": __import__("torch")})


CASES = [
    ("config.json: missing hidden_dim", _config(hidden_dim=...)),
    ("config.json: missing vocab_size", _config(vocab_size=...)),
    ("config.json: misspelt hiden_dim", _config(hidden_dim=..., hiden_dim=64)),
    ("config.json: hidden_dim as a string", _config(hidden_dim="64")),
    ("config.json: n_blocks as a float", _config(n_blocks=2.0)),
    ("config.json: n_heads true", _config(n_heads=True)),
    ("config.json: dropout as a string", _config(dropout="0.1")),
    ("config.json: dropout 1.5", _config(dropout=1.5)),
    ("config.json: time_conditioning 0", _config(time_conditioning=0)),
    ("config.json: causal true (AR checkpoint)", _config(causal=True)),
    ("config.json: adaln false", _config(adaln=False)),
    ("config.json: model_type llama", _config(model_type="llama")),
    ("config.json: attn_backend tilelang", _config(attn_backend="tilelang")),
    ("config.json: n_heads does not divide hidden_dim", _config(n_heads=3)),
    ("config.json: block_size 0", _config(block_size=0)),
    ("config.json: mask_id out of range", _config(mask_id=999)),
    ("config.json: sampling_eps_min > max", _config(sampling_eps_min=0.9, sampling_eps_max=0.5)),
    ("config.json: vocab_size differs from the weights", _config(vocab_size=300)),
    ("config.json: trailing comma (bad JSON)", _text('{"vocab_size": 258,}')),
    ("config.json: empty file", _text("")),
    ("config.json: a JSON list", _text("[1, 2]")),
    ("config.json: not UTF-8", _files(lambda d: (d / "config.json").write_bytes(b"\xff\xfe{"))),
    ("config.json missing", _files(lambda d: (d / "config.json").unlink())),
    ("pytorch_model.bin instead of safetensors", _files(_pickled)),
    ("path to a .bin file", lambda tmp: _load((tmp / "w.bin").write_bytes(b"x") and tmp / "w.bin")),
    ("path to a .ckpt file", lambda tmp: _load((tmp / "last.ckpt").write_bytes(b"x") and tmp / "last.ckpt")),
    ("path to config.json instead of the directory", lambda tmp: _load(_saved(tmp) / "config.json")),
    ("no weights at all", _files(lambda d: (d / "model.safetensors").unlink())),
    (
        "truncated model.safetensors",
        _files(lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:64])),
    ),
    ("tensor missing", _files(_tensor("backbone.blocks.0.norm1.weight", None))),
    ("tensor mis-shaped", _files(_tensor("backbone.blocks.0.norm1.weight", _torch("torch.zeros(3)")))),
    ("integer tensor", _files(_tensor("sampling_eps_min", _torch("torch.tensor(1)")))),
    ("shard deleted", _sharded(lambda d: sorted(d.glob("model-*.safetensors"))[0].unlink())),
    ("index: bad JSON", _sharded(lambda d: (d / "model.safetensors.index.json").write_text("{"))),
    ("index: no weight_map", _sharded(_index({"metadata": {}}))),
    ("index: shard path escapes the directory", _sharded(_index({"weight_map": {"a": "../x.safetensors"}}))),
    ("nonexistent directory", lambda tmp: _load(tmp / "nowhere")),
    ("hub id, offline", lambda tmp: _load("nobody-here/no-such-model-xyz", local_files_only=True)),
    ("unknown preset-like name", lambda tmp: _load("micr0")),
    ("dtype int8", lambda tmp: _load("micro", dtype="int8")),
    ("device 'gpu'", lambda tmp: _load("micro", device="gpu")),
    ("seed for a checkpoint", lambda tmp: _load(_saved(tmp), seed=1)),
    ("init 'zeros' for a preset", lambda tmp: _load("micro", init="zeros")),
    ("negative seed", lambda tmp: _load("micro", seed=-1)),
    ("override a non-field", lambda tmp: _load(_saved(tmp), hidden_size=64)),
    (
        "dind sample --model missing dir",
        lambda tmp: cli(["sample", "--model", str(tmp / "nope"), "--out", str(tmp / "o.jsonl")]),
    ),
    (
        "dind sample --model with pytorch_model.bin",
        lambda tmp: (
            _pickled(_saved(tmp)),
            cli(["sample", "--model", str(tmp / "ckpt"), "--out", str(tmp / "o.jsonl")]),
        )[1],
    ),
]
