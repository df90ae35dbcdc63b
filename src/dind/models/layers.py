"""The DiT's layers, with BD3-LM's module names (their state-dict keys are the checkpoint format)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from dind.models.rotary import apply_rotary

# (query, key, value) -> out, each (batch, heads, length, head_dim)
Attend = Callable[[Tensor, Tensor, Tensor], Tensor]
FREQUENCY_DIM = 256
MAX_PERIOD = 10000.0


class LayerNorm(nn.Module):
    """Weight-only LayerNorm computed in fp32 (autocast keeps layer_norm in fp32); returns fp32."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.float(), (self.dim,), self.weight.float())


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x * (1 + scale) + shift (one fused kernel fewer than written out)."""
    return torch.addcmul(shift, x, 1 + scale)


class EmbeddingLayer(nn.Module):
    """Token embedding as a raw (vocab, hidden) Parameter named ``embedding``."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.embedding[tokens]


class TimestepEmbedder(nn.Module):
    """sigma (batch,) -> sinusoidal features ([cos, sin], width 256) -> Linear -> SiLU -> Linear."""

    def __init__(self, cond_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQUENCY_DIM, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, sigma: Tensor) -> Tensor:
        half = FREQUENCY_DIM // 2
        steps = torch.arange(half, dtype=torch.float32, device=sigma.device)
        frequencies = torch.exp(-math.log(MAX_PERIOD) * steps / half)
        angles = sigma.float()[:, None] * frequencies[None, :]
        features = torch.cat((angles.cos(), angles.sin()), dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class DiTBlock(nn.Module):
    """adaLN-modulated attention and MLP sub-blocks with gated, dropped-out residual branches."""

    def __init__(self, hidden_dim: int, n_heads: int, cond_dim: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = LayerNorm(hidden_dim)
        self.attn_qkv = nn.Linear(hidden_dim, 3 * hidden_dim, bias=False)
        self.attn_out = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.norm2 = LayerNorm(hidden_dim)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_dim, 4 * hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * hidden_dim, hidden_dim),
        )
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def _modulation(self, conditioning: Tensor) -> tuple[Tensor, ...]:
        """(shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp), each (batch, 1, hidden)."""
        return self.adaLN_modulation(conditioning)[:, None].chunk(6, dim=2)

    def query_key_value(
        self,
        x: Tensor,
        conditioning: Tensor,
        cos: Tensor,
        sin: Tensor,
        modulation: tuple[Tensor, ...] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (batch, length, hidden) -> rotated query, rotated key, value (batch, heads, length, head_dim)."""
        shift, scale = (modulation or self._modulation(conditioning))[:2]
        hidden = modulate(self.norm1(x), shift, scale).to(x.dtype)
        qkv = rearrange(
            self.attn_qkv(hidden),
            "batch length (three heads head_dim) -> three batch heads length head_dim",
            three=3,
            heads=self.n_heads,
        )
        query_key = apply_rotary(qkv[:2], cos, sin)  # both at once: half the kernel launches
        return query_key[0], query_key[1], qkv[2]

    def forward(self, x: Tensor, conditioning: Tensor, cos: Tensor, sin: Tensor, attend: Attend) -> Tensor:
        modulation = self._modulation(conditioning)
        _, _, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation
        attended = attend(*self.query_key_value(x, conditioning, cos, sin, modulation))
        attended = rearrange(attended, "batch heads length head_dim -> batch length (heads head_dim)")
        x = torch.addcmul(x, gate_msa, self.dropout(self.attn_out(attended)))
        hidden = modulate(self.norm2(x), shift_mlp, scale_mlp).to(x.dtype)
        return torch.addcmul(x, gate_mlp, self.dropout(self.mlp(hidden)))


class FinalLayer(nn.Module):
    """norm_final, adaLN shift/scale, then the untied Linear(hidden, vocab) with bias."""

    def __init__(self, hidden_dim: int, vocab_size: int, cond_dim: int):
        super().__init__()
        self.norm_final = LayerNorm(hidden_dim)
        self.linear = nn.Linear(hidden_dim, vocab_size)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_dim)

    def forward(self, x: Tensor, conditioning: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(conditioning)[:, None].chunk(2, dim=2)
        return self.linear(modulate(self.norm_final(x), shift, scale).to(x.dtype))
