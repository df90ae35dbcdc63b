from pathlib import Path

import attrs
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dind.models.config import DiTConfig
from dind.models.presets import PRESETS
from dind.training import LRSchedule, Objective, TrainConfig, apply_overrides, load_mapping

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.y*ml"))


@given(
    lr=st.floats(1e-6, 1.0),
    steps=st.integers(1, 10**6),
    draw=st.sampled_from(["batch", "sample"]),
    distributed=st.sampled_from(["none", "ddp", "fsdp"]),
    clip=st.one_of(st.none(), st.floats(0.1, 10)),
)
def test_yaml_round_trip(lr, steps, draw, distributed, clip):
    config = TrainConfig.from_dict(
        apply_overrides(
            {},
            [
                f"optim.lr={lr!r}",
                f"steps={steps}",
                f"objective.block_size_draw={draw}",
                f"distributed={distributed}",
                f"optim.grad_clip={'null' if clip is None else repr(clip)}",
            ],
        )
    )
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config


def test_overrides_reach_nested_keys_and_parse_yaml_values():
    data = apply_overrides(
        {"optim": {"lr": 1.0}},
        [
            "optim.lr=1e-4",
            "objective.block_size_options.draft=8",
            "data.corpus_options.paths=[a, b]",
            "ema_decay=null",
            "activation_checkpointing=true",
        ],
    )
    config = TrainConfig.from_dict(data)
    assert config.optim.lr == 1e-4 and config.objective.block_sizes.options["draft"] == 8
    assert config.data.corpus.options["paths"] == ["a", "b"]
    assert config.ema_decay is None and config.activation_checkpointing is True


def test_json_and_yaml_files(tmp_path):
    (tmp_path / "a.json").write_text('{"steps": 7, "optim": {"lr": 0.01}}')
    (tmp_path / "b.yaml").write_text("steps: 9\noptim:\n  lr: 1e-3\n")
    assert TrainConfig.from_file(tmp_path / "a.json").steps == 7
    config = TrainConfig.from_file(tmp_path / "b.yaml", ["steps=11"])
    assert config.steps == 11 and config.optim.lr == 1e-3
    assert load_mapping(tmp_path / "b.yaml")["steps"] == 9


@pytest.mark.parametrize(
    "data, message",
    [
        ({"optim": {"lrr": 1}}, r"unknown config keys \['optim.lrr'\]"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": True}, r"steps must be a positive integer \(got True\)"),  # no coercion on the way
        ({"batch_size": "4"}, "batch_size must be a positive integer"),
        ({"objective": {"block_sizes": {"draft": 4}}}, r"objective.block_sizes must be a registry name or"),
        ({"distributed": "horovod"}, "distributed"),
        ({"objective": {"block_size_draw": "row"}}, "block_size_draw"),
        ({"optim": "fast"}, "must be a mapping"),
        ({"data": {"chunk_format": "padded"}}, "chunk_format"),
        ({"optim": {"lr": "abc"}}, r"optim.lr must be a number \(got 'abc'"),
        ({"optim": {"weight_decay": [1]}}, r"optim.weight_decay must be a number \(got \[1\]"),
    ],
)
def test_invalid_configs_name_the_key(data, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(data)


def test_override_syntax_errors():
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides({}, ["steps"])
    with pytest.raises(ValueError, match="not a section"):
        apply_overrides({"steps": 3}, ["steps.x=1"])


def test_every_config_file_is_tested():
    names = {path.relative_to(CONFIG_DIR).as_posix() for path in CONFIGS}
    assert {"tiny-shakespeare.yaml", "bd3lm-110m-finetune-owt.yaml", "table3/bimodal.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS])
def test_shipped_configs_parse_and_build_their_cheap_components(path):
    config = TrainConfig.from_file(path)
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
    assert "_options" not in path.read_text()  # written in the current spelling
    # the model's config (no weights), the objective at the data length, the LR schedule
    model = attrs.evolve(PRESETS.build(config.model.preset.name), **config.model.preset.options)
    assert isinstance(model, DiTConfig)
    length = config.data.length or model.model_length
    assert length <= model.model_length
    assert isinstance(config.objective.build(length), Objective)
    assert isinstance(config.optim.schedule(config.steps), LRSchedule)
    config.batch_geometry(8 if config.distributed != "none" else 1)


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_laughs(7), r"at most 100,000 values after expanding YAML aliases .*line 5"),
        ("x: " + "[" * 80 + "]" * 80 + "\n", r"nesting depth must be <= 64"),
        ("x: " + "[" * 50_000 + "]" * 50_000 + "\n", r"nesting depth must be <= 64"),
        ("a: &a [*a]\n", r"nesting depth must be <= 64"),
    ],
)
def test_config_files_that_expand_or_nest_absurdly_are_refused(tmp_path, text, match):
    from dind.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_mapping(path)
    path.write_text(_laughs(4))  # 10,000 values: fine
    assert len(load_mapping(path)) == 4
