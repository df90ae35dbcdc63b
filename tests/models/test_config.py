"""DiTConfig validation and the BD3-LM config.json translation."""

import attrs
import pytest

import dind
from dind.models import DiTConfig

BD3LM_CONFIG = {  # kuleshov-group/bd3lm-owt-block_size4's config.json (REFERENCE.md)
    "architectures": ["BD3LM"],
    "attn_backend": "sdpa",
    "block_size": 4,
    "cond_dim": 128,
    "cross_attn": True,
    "dropout": 0.1,
    "hidden_dim": 768,
    "model_length": 1024,
    "model_type": "bd3lm",
    "n_blocks": 12,
    "n_heads": 12,
    "return_dict": False,
    "sampling_eps_max": 0.999,
    "sampling_eps_min": 0.001,
    "time_conditioning": False,
    "var_min": True,
    "vocab_size": 50258,
}


def micro(**changes):
    fields = {
        "vocab_size": 258,
        "hidden_dim": 64,
        "n_blocks": 2,
        "n_heads": 2,
        "cond_dim": 32,
        "model_length": 128,
    }
    return DiTConfig(**(fields | changes))


def test_reads_the_bd3lm_config():
    config = DiTConfig.from_bd3lm_config(BD3LM_CONFIG)
    assert (config.vocab_size, config.hidden_dim, config.n_blocks, config.n_heads) == (50258, 768, 12, 12)
    assert (config.block_size, config.mask_token_id, config.head_dim) == (4, 50257, 64)
    written = config.to_bd3lm_config(sampling_eps_min=0.001, sampling_eps_max=0.999)
    assert written.pop("auto_map") == {
        "AutoConfig": "kuleshov-group/bd3lm-owt-block_size4--configuration_bd3lm.BD3LMConfig",
        "AutoModelForMaskedLM": "kuleshov-group/bd3lm-owt-block_size4--modeling_bd3lm.BD3LM",
    }
    assert written == BD3LM_CONFIG


def test_round_trip_with_dind_fields():
    config = micro(mask_id=3, attn_backend="eager", dropout=0.0, time_conditioning=True, block_size=8)
    assert DiTConfig.from_bd3lm_config(config.to_bd3lm_config()) == config


def test_block_size_is_always_written():
    assert micro().to_bd3lm_config()["block_size"] == 128  # one global block when the config has none
    assert micro(block_size=4).to_bd3lm_config(code_repo=None)["auto_map"] == {
        "AutoConfig": "configuration_bd3lm.BD3LMConfig",
        "AutoModelForMaskedLM": "modeling_bd3lm.BD3LM",
    }


def test_optional_keys_default_and_unknown_keys_are_ignored():
    shapes = {
        key: BD3LM_CONFIG[key] for key in ("vocab_size", "hidden_dim", "n_blocks", "n_heads", "cond_dim")
    }
    config = DiTConfig.from_bd3lm_config({**shapes, "some_future_key": 1, "transformers_version": "4.4"})
    assert (config.model_length, config.dropout, config.block_size, config.attn_backend) == (
        1024,
        0.1,
        None,
        "sdpa",
    )
    nope = {**shapes, "attn_backend": "nope"}
    assert DiTConfig.from_bd3lm_config(nope, attn_backend="eager").attn_backend == "eager"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_heads": 3}, r"n_heads must divide hidden_dim \(got 3, 64\)"),
        ({"hidden_dim": 6, "n_heads": 6}, "head_dim = hidden_dim / n_heads must be even"),
        ({"n_blocks": 0}, r"n_blocks must be a positive integer <= 1,024 \(got 0\)"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"mask_id": 258}, r"mask_id must be an int in \[0, vocab_size\) \(got 258, vocab_size 258\)"),
        ({"attn_backend": "fast"}, "attn_backend must be one of"),
        ({"time_conditioning": 1}, "time_conditioning must be a bool"),
        ({"block_size": 0}, "block_size must be a positive integer"),
    ],
)
def test_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        micro(**changes)


def test_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        micro().n_blocks = 3


@pytest.mark.parametrize(
    "field", ["vocab_size", "hidden_dim", "n_blocks", "n_heads", "cond_dim", "model_length"]
)
def test_absurd_sizes_are_refused_naming_field_value_and_limit(field):
    from dind.models.config import LIMITS

    limit = LIMITS[field]
    with pytest.raises(
        ValueError, match=rf"^{field} must be a positive integer <= {limit:,} \(got {limit + 1}\)$"
    ):
        dind.load("micro", **{field: limit + 1})
    with pytest.raises(ValueError, match=rf"{field} must be .* \(got an integer of \d+ bits\)$"):
        dind.load("micro", **{field: 10**5000})  # the message stays short
