"""Component specs in a TrainConfig: one spec type (name + options) for every pluggable part, its
spellings, early checks against the registered factory, and the deprecated flat spellings."""

from pathlib import Path

import pytest
import yaml

from dind.registry import RegistryError
from dind.training import BLOCK_SIZE_DISTRIBUTIONS, ComponentSpec, TrainConfig, apply_overrides
from dind.training.block_sizes import parse_block_sizes
from dind.training.config import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny-shakespeare.yaml"

# the plays configs/tiny-shakespeare.yaml leaves out (the shipped judges' text)
JUDGES_PLAYS = ["julius_caesar.txt", "twelfth_night.txt", "merchant_of_venice.txt",
                "much_ado_about_nothing.txt", "henry_v.txt", "richard_ii.txt"]  # fmt: skip
# configs/tiny-shakespeare.yaml as written before component specs held their options
OLD_TINY = """
model: {preset: tiny, options: {model_length: 256, dropout: 0.0}}
data:
  corpus: text
  corpus_options:
    paths: [data/shakespeare]
    exclude: [julius_caesar.txt, twelfth_night.txt, merchant_of_venice.txt,
              much_ado_about_nothing.txt, henry_v.txt, richard_ii.txt]
  tokenizer: bytes
  length: 256
  chunk_format: bos
  validation_fraction: 0.05
objective:
  block_sizes: bimodal
  block_size_options: {draft: 4, global_size: 256, global_probability: 0.1}
  block_size_draw: sample
  schedule: loglinear
  schedule_options: {}
variance: {enabled: false}
optim: {lr: 1.0e-3, warmup_steps: 50, lr_schedule: cosine, lr_schedule_options: {}, grad_clip: 1.0}
ema_decay: 0.999
steps: 1000
batch_size: 8
eval_every: 50
eval_batches: 8
save_every: 100
out_dir: runs/tiny-shakespeare
"""


def _bimodal(draft, global_size, probability):
    options = {"draft": draft, "global_size": global_size, "global_probability": probability}
    return ComponentSpec("bimodal", options)


def _config(*overrides):
    return TrainConfig.from_dict(apply_overrides({}, list(overrides)))


def test_every_pluggable_part_is_one_spec_type():
    config = TrainConfig()
    specs = [
        config.model.preset,
        config.data.corpus,
        config.data.tokenizer,
        config.objective.block_sizes,
        config.objective.schedule,
        config.objective.time_sampler,
        config.optim.lr_schedule,
        config.trainer,
    ]
    assert all(type(spec) is ComponentSpec for spec in specs)
    assert config.objective.block_sizes == ComponentSpec(
        "bimodal", {"draft": 4, "global_size": 1024, "global_probability": 0.1}
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "bimodal:4,32,0.25",
        {"name": "bimodal", "draft": 4, "global_size": 32, "global_probability": 0.25},
        {"name": "bimodal", "options": {"draft": 4, "global_size": 32, "global_probability": 0.25}},
        {"name": "bimodal", "draft": 4, "options": {"global_size": 32, "global_probability": 0.25}},
    ],
)
def test_spellings_of_one_spec(spelling):
    config = TrainConfig.from_dict({"objective": {"block_sizes": spelling}})
    assert config.objective.block_sizes == ComponentSpec(
        "bimodal", {"draft": 4, "global_size": 32, "global_probability": 0.25}
    )
    assert config.to_dict()["objective"]["block_sizes"] == {
        "name": "bimodal",
        "draft": 4,
        "global_size": 32,
        "global_probability": 0.25,
    }


@pytest.mark.parametrize(
    "text", ["fixed:4", "bimodal:4,1024", "uniform:4,16,64", "categorical:4=0.7,64=0.2,1024=0.1"]
)
def test_text_form_becomes_the_spec_that_builds_the_same_law(text):
    config = _config(f"objective.block_sizes={text}")
    spec = config.objective.block_sizes
    assert BLOCK_SIZE_DISTRIBUTIONS.build(spec.name, **spec.options) == parse_block_sizes(text)
    assert config.objective.build_block_sizes() == parse_block_sizes(text)
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config


def test_an_option_called_name_is_written_under_options():
    corpus = {"name": "huggingface", "options": {"name": "Skylion007/openwebtext", "split": "train"}}
    config = TrainConfig.from_dict({"data": {"corpus": corpus}})
    assert config.data.corpus.options == {"name": "Skylion007/openwebtext", "split": "train"}
    assert config.to_dict()["data"]["corpus"] == corpus
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config


def test_round_trip_with_options_everywhere():
    config = _config(
        "model.preset={name: micro, dropout: 0.0, model_length: 64}",
        "data.corpus={name: text, paths: [a.txt], document_delimiter: '\\n\\n'}",
        "data.tokenizer=bytes",
        "objective.block_sizes={name: uniform, sizes: [4, 16]}",
        "objective.schedule={name: polynomial, power: 3.0}",
        "objective.time_sampler=uniform",
        "optim.lr_schedule={name: cosine, min_ratio: 0.2}",
        "grad_clip=null",
    )
    assert config.objective.schedule.options == {"power": 3.0}
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            ("objective.schedule={name: quadratic}",),
            RegistryError,
            r"objective.schedule: unknown schedules 'quadratic'; known names: cosine, loglinear",
        ),
        (
            ("objective.block_sizes={name: fixed, width: 3}",),
            ValueError,
            r"objective.block_sizes 'fixed' does not take options \['width'\] \(accepted: \['size'\]\)",
        ),
        (  # the builder passes warmup_steps and total_steps itself
            ("optim.lr_schedule={name: cosine, warmup_steps: 3}",),
            ValueError,
            r"optim.lr_schedule 'cosine' does not take options \['warmup_steps'\] "
            r"\(accepted: \['min_ratio'\]\)",
        ),
        (  # a preset's options are DiTConfig fields
            ("model.preset={name: micro, layers: 3}",),
            ValueError,
            r"model.preset 'micro' does not take options \['layers'\] \(accepted: \['vocab_size'",
        ),
        (("data.tokenizer=klingon",), RegistryError, r"data.tokenizer: unknown tokenizers 'klingon'"),
        (("trainer=fancy",), RegistryError, r"trainer: unknown trainers 'fancy'; known names: default"),
        (("trainer={name: default, steps: 3}",), ValueError, r"trainer 'default' does not take options"),
        (
            ("objective.block_sizes={name: fixed, size: 4, options: {size: 8}}",),
            ValueError,
            r"objective.block_sizes gives options \['size'\] both inline and under options",
        ),
        (
            ("model.init=/some/checkpoint", "model.options={dropout: 0.0}"),
            ValueError,
            r"model.preset options cannot change a checkpoint's model",
        ),
    ],
)
def test_specs_are_checked_when_the_config_is_made(overrides, error, message):
    with pytest.raises(error, match=message):
        _config(*overrides)  # nothing is built: the registered factory's signature decides


# ---- deprecated spellings ----


def test_an_old_config_file_loads_as_the_new_one(tmp_path):
    (tmp_path / "old.yaml").write_text(OLD_TINY)
    old = TrainConfig.from_file(tmp_path / "old.yaml")
    assert old == TrainConfig.from_file(TINY)
    assert "block_size_options" not in old.to_yaml() and "grad_clip: 1.0" in old.to_yaml()
    # a checkpoint's train_config.yaml written before (the demo model's) loads too
    shipped = TrainConfig.from_file(
        ROOT / "src" / "dind" / "assets" / "tiny-shakespeare" / "train_config.yaml"
    )
    assert shipped.objective.block_sizes == old.objective.block_sizes


@pytest.mark.parametrize("base", ["old", "new"])
@pytest.mark.parametrize(
    "overrides, expected",
    [
        (  # README.md
            ["objective.block_sizes=bimodal:4,128,0.1", "objective.block_size_options={}"],
            {"objective.block_sizes": _bimodal(4, 128, 0.1)},
        ),
        (
            ["objective.block_size_options.global_probability=0.25"],
            {"objective.block_sizes": _bimodal(4, 256, 0.25)},
        ),
        (
            ["objective.block_sizes.global_probability=0.25"],
            {"objective.block_sizes": _bimodal(4, 256, 0.25)},
        ),
        (
            ["objective.block_sizes=fixed", "objective.block_size_options={size: 4}"],
            {"objective.block_sizes": ComponentSpec("fixed", {"size": 4})},
        ),
        (["model.options={}"], {"model.preset": ComponentSpec("tiny")}),
        (["model.options.model_length=64"],
         {"model.preset": ComponentSpec("tiny", {"model_length": 64, "dropout": 0.0})}),
        (["data.corpus_options.paths=[x.txt]"],
         {"data.corpus": ComponentSpec("text", {"paths": ["x.txt"], "exclude": JUDGES_PLAYS})}),
        (
            ["optim.lr_schedule_options={min_ratio: 0.5}"],
            {"optim.lr_schedule": ComponentSpec("cosine", {"min_ratio": 0.5})},
        ),
        (  # a component given by its bare name takes an option with a dot
            ["optim.lr_schedule.min_ratio=0.5"],
            {"optim.lr_schedule": ComponentSpec("cosine", {"min_ratio": 0.5})},
        ),
        (["optim.grad_clip=null"], {"grad_clip": None}),
        (["grad_clip=2.0"], {"grad_clip": 2.0}),
    ],
)  # fmt: skip
def test_old_and_new_override_spellings_on_old_and_new_files(tmp_path, base, overrides, expected):
    path = TINY
    if base == "old":
        path = tmp_path / "old.yaml"
        path.write_text(OLD_TINY)
    config = TrainConfig.from_file(path, overrides)
    for key, value in expected.items():
        node = config
        for part in key.split("."):
            node = getattr(node, part)
        assert node == value, key


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"objective": {"block_sizes": "fixed:4", "block_size_options": {"size": 4}}},
            r"objective.block_size_options must be empty when objective.block_sizes is in text form",
        ),
        (
            {"objective": {"block_sizes": {"name": "fixed", "size": 4}, "block_size_options": {"size": 8}}},
            r"objective.block_sizes gives its options inline, so objective.block_size_options must be empty",
        ),
        (
            {"optim": {"grad_clip": 1.0}, "grad_clip": 2.0},
            r"optim.grad_clip is a deprecated spelling of grad_clip",
        ),
        ({"data": {"corpus_options": [1]}}, r"data.corpus_options must be a mapping of options"),
    ],
)
def test_ambiguous_old_spellings_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(data)


def test_a_text_form_takes_no_option_override():
    with pytest.raises(ValueError, match=r"'block_sizes' is not a section \(got 'fixed:4'\)"):
        TrainConfig.from_file(TINY, ["objective.block_sizes=fixed:4", "objective.block_sizes.size=8"])
    message = r"must be empty when objective.block_sizes is in text form \(got 'fixed:4' with \{'size': 8\}\)"
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_file(TINY, ["objective.block_sizes=fixed:4", "objective.block_size_options.size=8"])


def test_flat_options_without_their_component_key_set_the_default_components_options():
    config = TrainConfig.from_dict(
        {"objective": {"block_size_options": {"draft": 8}}, "model": {"options": {"dropout": 0.0}}}
    )
    assert config.objective.block_sizes.options == {
        "draft": 8,
        "global_size": 1024,
        "global_probability": 0.1,
    }
    assert config.model.preset == ComponentSpec("tiny", {"dropout": 0.0})


def test_sections_are_declared_next_to_their_components():
    modules = {name: cls.__module__ for name, cls in SECTIONS.items()}
    assert modules == {
        "model": "dind.training.model",
        "data": "dind.training.data",
        "objective": "dind.training.objective",
        "variance": "dind.training.variance",
        "optim": "dind.training.optim",
    }
