"""The DiT against a from-scratch functional forward written from REFERENCE.md and its state dict."""

import math

import pytest
import torch
import torch.nn.functional as F

from dind.models import build


def reference_logits(state, config, tokens, allowed):
    """Plain-loop reference: adaLN order (shift, scale, gate) x 2, weight-only fp32 LayerNorm,
    rotate-half rotary base 10000, GELU tanh, untied output with bias. ``allowed`` (L, L) bool."""

    def p(name):
        return state[f"backbone.{name}"]

    def norm(x, weight):
        return F.layer_norm(x, (x.shape[-1],)) * weight

    hidden, heads = config.hidden_dim, config.n_heads
    head_dim = hidden // heads
    length = tokens.shape[1]
    half = 128
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
    sigma = torch.zeros(tokens.shape[0])
    features = torch.cat(
        [torch.cos(sigma[:, None] * frequencies), torch.sin(sigma[:, None] * frequencies)], -1
    )
    c = F.linear(features, p("sigma_map.mlp.0.weight"), p("sigma_map.mlp.0.bias"))
    c = F.silu(F.linear(F.silu(c), p("sigma_map.mlp.2.weight"), p("sigma_map.mlp.2.bias")))
    inv_freq = 1.0 / 10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.arange(length).float()[:, None] * inv_freq[None]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rotary(x):  # (batch, heads, length, head_dim)
        x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    x = p("vocab_embed.embedding")[tokens]
    for i in range(config.n_blocks):
        mod = F.linear(c, p(f"blocks.{i}.adaLN_modulation.weight"), p(f"blocks.{i}.adaLN_modulation.bias"))
        shift1, scale1, gate1, shift2, scale2, gate2 = mod[:, None].chunk(6, dim=-1)
        h = norm(x, p(f"blocks.{i}.norm1.weight")) * (1 + scale1) + shift1
        qkv = F.linear(h, p(f"blocks.{i}.attn_qkv.weight")).view(*h.shape[:2], 3, heads, head_dim)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))
        scores = rotary(q) @ rotary(k).transpose(-1, -2) / math.sqrt(head_dim)
        a = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ v
        a = a.transpose(1, 2).reshape(*h.shape)
        x = x + gate1 * F.linear(a, p(f"blocks.{i}.attn_out.weight"))
        h = norm(x, p(f"blocks.{i}.norm2.weight")) * (1 + scale2) + shift2
        h = F.linear(h, p(f"blocks.{i}.mlp.0.weight"), p(f"blocks.{i}.mlp.0.bias"))
        h = F.linear(
            F.gelu(h, approximate="tanh"), p(f"blocks.{i}.mlp.2.weight"), p(f"blocks.{i}.mlp.2.bias")
        )
        x = x + gate2 * h
    shift, scale = F.linear(
        c, p("output_layer.adaLN_modulation.weight"), p("output_layer.adaLN_modulation.bias")
    )[:, None].chunk(2, dim=-1)
    h = norm(x, p("output_layer.norm_final.weight")) * (1 + scale) + shift
    return F.linear(h, p("output_layer.linear.weight"), p("output_layer.linear.bias"))


@pytest.mark.parametrize("block_size", [None, 4])
def test_dit_matches_reference_forward(block_size, generator):
    model = build("micro", init="random", generator=generator, attn_backend="eager").eval()
    with torch.no_grad():  # LayerNorm weights are 1 after init: make them matter
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(0.5, 1.5, generator=generator)
    tokens = torch.randint(0, model.vocab_size, (2, 12), generator=generator)
    positions = torch.arange(12)
    allowed = (positions[None, :] // (block_size or 12)) <= (positions[:, None] // (block_size or 12))
    with torch.no_grad():
        expected = reference_logits(model.state_dict(), model.config, tokens, allowed)
        torch.testing.assert_close(
            model.logits(tokens, block_size=block_size), expected, rtol=1e-4, atol=1e-5
        )


def test_bd3lm_init_gives_uniform_logits_and_mask_logit_is_not_suppressed(generator):
    model = build("micro", generator=generator).eval()
    logits = model.logits(torch.randint(0, 258, (1, 8), generator=generator))
    assert torch.count_nonzero(logits) == 0  # zero output layer: BD3-LM's adaLN-zero start
    random = build("micro", init="random", generator=generator).eval()
    logits = random.logits(torch.full((1, 8), random.mask_id))
    assert torch.isfinite(logits[..., random.mask_id]).all()


def test_dropout_only_in_train_mode(generator):
    model = build("micro", init="random", generator=generator, dropout=0.5)
    tokens = torch.randint(0, 258, (2, 16), generator=generator)
    model.eval()
    assert torch.equal(model.logits(tokens), model.logits(tokens))
    model.train()
    assert not torch.equal(model.logits(tokens), model.logits(tokens))
