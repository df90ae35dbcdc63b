"""Presets: the 110M parameter count and BD3-LM's exact state-dict keys and shapes (on the meta device)."""

import pytest
import torch

from dind.models import PRESETS, DiTConfig, build

HIDDEN, VOCAB, COND = 768, 50258, 128


def expected_110m_shapes():
    """REFERENCE.md's key table."""
    shapes = {
        "backbone.vocab_embed.embedding": (VOCAB, HIDDEN),
        "backbone.sigma_map.mlp.0.weight": (COND, 256),
        "backbone.sigma_map.mlp.0.bias": (COND,),
        "backbone.sigma_map.mlp.2.weight": (COND, COND),
        "backbone.sigma_map.mlp.2.bias": (COND,),
        "backbone.rotary_emb.inv_freq": (32,),
        "backbone.output_layer.norm_final.weight": (HIDDEN,),
        "backbone.output_layer.adaLN_modulation.weight": (2 * HIDDEN, COND),
        "backbone.output_layer.adaLN_modulation.bias": (2 * HIDDEN,),
        "backbone.output_layer.linear.weight": (VOCAB, HIDDEN),
        "backbone.output_layer.linear.bias": (VOCAB,),
        "sampling_eps_min": (),
        "sampling_eps_max": (),
    }
    for i in range(12):
        block = f"backbone.blocks.{i}."
        shapes |= {
            block + "norm1.weight": (HIDDEN,),
            block + "norm2.weight": (HIDDEN,),
            block + "attn_qkv.weight": (3 * HIDDEN, HIDDEN),
            block + "attn_out.weight": (HIDDEN, HIDDEN),
            block + "mlp.0.weight": (4 * HIDDEN, HIDDEN),
            block + "mlp.0.bias": (4 * HIDDEN,),
            block + "mlp.2.weight": (HIDDEN, 4 * HIDDEN),
            block + "mlp.2.bias": (HIDDEN,),
            block + "adaLN_modulation.weight": (6 * HIDDEN, COND),
            block + "adaLN_modulation.bias": (6 * HIDDEN,),
        }
    return shapes


@pytest.fixture(scope="module")
def bd3lm_110m():
    with torch.device("meta"):
        return build("bd3lm-110m")


def test_110m_parameter_count(bd3lm_110m):
    assert sum(parameter.numel() for parameter in bd3lm_110m.parameters()) == 169_627_218


def test_110m_state_dict_keys_and_shapes(bd3lm_110m):
    actual = {name: tuple(tensor.shape) for name, tensor in bd3lm_110m.state_dict().items()}
    assert actual == expected_110m_shapes()


def test_small_presets():
    sizes = {}
    with torch.device("meta"):
        for name in ("tiny", "micro"):
            model = build(name)
            sizes[name] = sum(parameter.numel() for parameter in model.parameters())
            assert (model.vocab_size, model.mask_id) == (258, 257)
    assert 3e6 <= sizes["tiny"] <= 6e6
    assert PRESETS.build("tiny").model_length == 1024 and PRESETS.build("micro").model_length == 128


def test_build_overrides_and_errors():
    assert build("micro", n_blocks=1, device="meta").config.n_blocks == 1
    with pytest.raises(ValueError, match=r"overrides must be DiTConfig fields \(got \['layers'\]"):
        build("micro", layers=3)
    with pytest.raises(KeyError, match="unknown model_presets 'huge'; known names: bd3lm-110m, micro, tiny"):
        build("huge")
    assert isinstance(build(DiTConfig(8, 8, 1, 2, 4, 16), device="meta").config, DiTConfig)


def test_generator_makes_initialisation_reproducible():
    first = build("micro", init="random", generator=torch.Generator().manual_seed(3))
    second = build("micro", init="random", generator=torch.Generator().manual_seed(3))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_model_larger_than_the_free_memory_is_refused_before_allocating(monkeypatch):
    import dind.models.presets as presets
    from dind.errors import UserError

    monkeypatch.setattr(presets, "available_memory", lambda device: 2**20)  # 1 MiB free
    build("micro", device="cpu")  # 0.7 MB of weights: fits
    with pytest.raises(UserError, match=r"needs [\d.]+ MiB .* more than the 1\.0 MiB free on cpu"):
        build("tiny", device="cpu")
    monkeypatch.setattr(presets, "available_memory", lambda device: 8 * 2**30)
    with pytest.raises(UserError, match=r"hidden_dim 65536, n_blocks 64, .* needs [\d.]+ GiB"):
        build("micro", hidden_dim=65536, n_heads=512, n_blocks=64)


def test_the_parameter_count_of_the_check_is_exact():
    import attrs

    from dind.models.presets import _meta_parameters

    config = PRESETS.build("bd3lm-110m")
    one, two = (_meta_parameters(attrs.evolve(config, n_blocks=n)) for n in (1, 2))
    assert one + (two - one) * (config.n_blocks - 1) == 169_627_218  # BD3-LM's count (REFERENCE.md)
