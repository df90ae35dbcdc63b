"""TrainSettings is the one definition of the Trainer's settings: TrainConfig's top-level keys are
its fields (same validators, same errors), and a misspelt setting lists the valid ones."""

import attrs
import pytest

from dind.training import TrainConfig, Trainer, TrainSettings


def test_train_config_inherits_every_setting_with_its_validator():
    mine = attrs.fields_dict(TrainConfig)
    for field in attrs.fields(TrainSettings):
        inherited = mine[field.name]
        assert (inherited.default, inherited.validator, inherited.converter) == (
            field.default,
            field.validator,
            field.converter,
        ), field.name
    assert TrainSettings.from_config(TrainConfig(steps=7, grad_clip=None)) == TrainSettings(
        steps=7, grad_clip=None
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ema_decay": 1.0}, r"'ema_decay' must be < 1.0"),
        ({"ema_decay": "high"}, r"ema_decay must be a number or null \(got 'high'\)"),
        ({"grad_clip": True}, r"grad_clip must be a number or null \(got True\)"),
        ({"grad_clip": 0.0}, r"grad_clip must be > 0 or null \(got 0.0\)"),
        ({"eval_every": 0}, r"eval_every must be a positive integer or null \(got 0\)"),
        ({"precision": "fp16"}, r"precision must be one of auto, fp32, bf16 \(got 'fp16'\)"),
    ],
)
def test_settings_are_checked_alike_in_python_and_in_a_config(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**settings)
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(settings)


def test_numbers_written_as_text_still_read():
    assert TrainSettings(ema_decay="0.999", grad_clip="1e-1").grad_clip == 0.1  # YAML 1.1 reads 1e-1 as text


def test_a_misspelt_trainer_setting_lists_the_valid_ones():
    with pytest.raises(
        TypeError, match=r"Trainer got unknown settings \['stpes'\]; valid settings: \['steps', "
    ):
        Trainer(None, None, None, None, None, stpes=3)  # refused before any component is looked at
    with pytest.raises(TypeError, match=r"TrainSettings got unknown settings \['lr'\]"):
        TrainSettings.from_keywords({"lr": 1e-3})
