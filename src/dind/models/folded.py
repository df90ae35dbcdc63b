"""A DiT prepared for sampling steps: its constant adaLN modulation folded into the LayerNorms.

The sampler calls the DiT without ``sigma``, so every sampling step's conditioning is the same
vector, silu(sigma_map(0)), and so is every block's adaLN modulation (shift, scale, gate). The
reference forward recomputes it each step: 7 small matmuls over 2.4 MB of the tiny model's 22 MB
of weights, then LayerNorm, multiply, add. Folded once, a modulated LayerNorm is one LayerNorm with
an affine:

    LN(x) * w * (1 + scale) + shift  ==  layer_norm(x, weight=w * (1 + scale), bias=shift)

``FoldedDiT`` holds those folded vectors (fp32, where the DiT's LayerNorms compute; gates in the
weights' dtype, as the reference's) and *shares* every matrix with the DiT (no copies). Its
``step`` is the cached block step of ``DiT.cached_logits`` with the attention supplied by the
caller; logits equal the reference up to float rounding (the products are associated differently).

It is a snapshot of the weights it was built from: ``dind.models.static_step`` builds it anew at
the start of every ``generate`` call (eager static step), or whenever a ``WeightSnapshot`` of the
weights no longer matches (compiled step, whose weights inductor froze into the graph).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from dind.models.dit import DiT
from dind.models.rotary import apply_rotary

# (layer index, query, key, value) -> attended (batch, heads, width, head_dim); writes the cache
AttendLayer = Callable[[int, Tensor, Tensor, Tensor], Tensor]


class WeightSnapshot:
    """An exact copy of a module's parameters and buffers, to tell whether any changed since.

    ``matches(model)`` is True iff every tensor has the same name, shape, dtype, device and bytes
    (``torch.equal``) as when the snapshot was taken: no way of writing weights can slip past it
    (optimizer steps, ``load_state_dict``, ``p.data.copy_(...)`` as BD3-LM's EMA helper swaps
    weights, casts, moves). It costs one copy of the weights in memory and one read of both per
    check; ``dind.models.static_step`` checks once per ``generate`` call, for compiled steps only
    (the eager static step refolds every call instead). Weights holding NaN never match (NaN !=
    NaN): such a model recompiles on every call, and its samples stop at the non-finite check."""

    def __init__(self, model: nn.Module):
        self._tensors = [(name, tensor.detach().clone()) for name, tensor in _named_tensors(model)]

    def matches(self, model: nn.Module) -> bool:
        current = _named_tensors(model)
        if len(current) != len(self._tensors):
            return False
        return all(
            name == old_name
            and tensor.shape == old.shape
            and tensor.dtype == old.dtype
            and tensor.device == old.device
            and torch.equal(tensor.detach(), old)
            for (name, tensor), (old_name, old) in zip(current, self._tensors, strict=True)
        )


def _named_tensors(model: nn.Module) -> list[tuple[str, Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]


class _FoldedNorm(nn.Module):
    """A LayerNorm with its adaLN shift/scale folded in: weight w * (1 + scale), bias shift (fp32)."""

    def __init__(self, norm_weight: Tensor, shift: Tensor, scale: Tensor):
        super().__init__()
        self.register_buffer("weight", (norm_weight.float() * (1 + scale).float()).contiguous())
        self.register_buffer("bias", shift.float().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        """fp32 LayerNorm of x, cast back to x's dtype (the reference's ``.to(x.dtype)``)."""
        return F.layer_norm(x.float(), (x.shape[-1],), self.weight, self.bias).to(x.dtype)


class _FoldedLayer(nn.Module):
    def __init__(self, modulation: Tensor, norm1: Tensor, norm2: Tensor):
        super().__init__()
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation.chunk(6)
        self.norm1 = _FoldedNorm(norm1, shift_msa, scale_msa)
        self.norm2 = _FoldedNorm(norm2, shift_mlp, scale_mlp)
        self.register_buffer("gate_msa", gate_msa.contiguous())
        self.register_buffer("gate_mlp", gate_mlp.contiguous())


class FoldedDiT(nn.Module):
    """The sampling-step form of a ``DiT`` (see the module docstring). ``backbone`` is the DiT's own
    module (shared, not copied); the folded vectors are buffers of this module."""

    def __init__(self, model: DiT):
        super().__init__()
        if not isinstance(model, DiT):
            raise ValueError(f"FoldedDiT needs a dind DiT (got {type(model).__name__})")
        self.config = model.config
        self.backbone = model.backbone
        with torch.no_grad():
            embedding = model.backbone.vocab_embed.embedding
            conditioning = model._conditioning(
                None, torch.zeros(1, 1, dtype=torch.long, device=embedding.device)
            )
            self.layers = nn.ModuleList(
                _FoldedLayer(block.adaLN_modulation(conditioning)[0], block.norm1.weight, block.norm2.weight)
                for block in model.backbone.blocks
            )
            output = model.backbone.output_layer
            shift, scale = output.adaLN_modulation(conditioning)[0].chunk(2)
            self.norm_final = _FoldedNorm(output.norm_final.weight, shift, scale)

    def step(
        self, block: Tensor, positions: Tensor, attend: AttendLayer, *, features: bool = True
    ) -> Tensor | None:
        """(batch, width) tokens at ``positions`` -> (batch, width, hidden_dim) features, the last
        block's output (``project`` turns them into logits); ``attend`` writes each layer's
        keys/values to the cache and attends. ``features=False`` stops after the last layer's
        keys/values (appending a finished block) and returns None."""
        x = self.backbone.vocab_embed(block)
        cos, sin = self.backbone.rotary_emb(positions)  # fp32; apply_rotary casts to x's dtype
        heads = self.config.n_heads
        count = len(self.layers)
        for index, (layer, folded) in enumerate(zip(self.backbone.blocks, self.layers, strict=True)):
            qkv = rearrange(
                layer.attn_qkv(folded.norm1(x)),
                "batch width (three heads head_dim) -> three batch heads width head_dim",
                three=3,
                heads=heads,
            )
            query_key = apply_rotary(qkv[:2], cos, sin)
            attended = attend(index, query_key[0], query_key[1], qkv[2])
            if not features and index == count - 1:
                return None
            attended = rearrange(attended, "batch heads width head_dim -> batch width (heads head_dim)")
            x = torch.addcmul(x, folded.gate_msa, layer.attn_out(attended))
            x = torch.addcmul(x, folded.gate_mlp, layer.mlp(folded.norm2(x)))
        return x

    def project(self, features: Tensor) -> Tensor:
        """(..., hidden_dim) features -> (..., vocab) fp32 logits (folded final norm, then linear)."""
        return self.backbone.output_layer.linear(self.norm_final(features)).float()
