"""The masked forward process q(x_t | x) with one diffusion time per block.

Each non-frozen position j of row b is replaced by MASK with probability 1 - alpha(t_bj),
independently; frozen positions (BOS, a prompt) are never masked. ``mask_tokens_in_range`` is
BD3-LM's "resample" option: every block's masked fraction lies in [low, high].
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from dind.schedules import NoiseSchedule


@attrs.frozen(eq=False)  # holds tensors: compare their values, not ==
class MaskedBatch:
    """noisy: (batch, length) long, MASK where masked; masked: (batch, length) bool."""

    noisy: Tensor
    masked: Tensor


def per_row_block_sizes(block_sizes: Tensor | int, batch: int, length: int) -> Tensor:
    """(batch,) long block sizes, each checked to divide ``length``."""
    sizes = torch.as_tensor(block_sizes, dtype=torch.long)
    sizes = sizes.expand(batch) if sizes.dim() == 0 else sizes
    if sizes.shape != (batch,):
        raise ValueError(
            f"block_sizes must be an int or a (batch,) tensor (got shape {tuple(sizes.shape)}, batch {batch})"
        )
    bad = (sizes < 1) | (length % sizes.clamp_min(1) != 0)
    if bad.any():
        raise ValueError(f"every block size must divide length (got {sizes[bad].tolist()}, length {length})")
    return sizes


def block_times_to_positions(t_blocks: Tensor, block_sizes: Tensor | int, length: int) -> Tensor:
    """(batch, max_blocks) block times -> (batch, length): position j of row b gets
    t_blocks[b, j // block_size_b]. max_blocks must cover the row with the smallest block size."""
    batch = t_blocks.shape[0]
    sizes = per_row_block_sizes(block_sizes, batch, length).to(t_blocks.device)
    block_index = torch.arange(length, device=t_blocks.device)[None, :] // sizes[:, None]
    needed = int(length // sizes.min())
    if t_blocks.shape[1] < needed:
        raise ValueError(
            f"t_blocks must have >= length // min(block_sizes) = {needed} columns (got {t_blocks.shape[1]})"
        )
    return t_blocks.gather(1, block_index)


def _frozen_mask(frozen: Tensor | None, shape: torch.Size, device: torch.device) -> Tensor:
    if frozen is None:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    frozen = frozen.to(device=device, dtype=torch.bool)
    if frozen.shape not in (shape, shape[1:]):
        raise ValueError(
            f"frozen must be (batch, length) or (length,) = {tuple(shape)} (got {tuple(frozen.shape)})"
        )
    return frozen.expand(shape)


def mask_tokens(
    x: Tensor,
    t: Tensor,
    *,
    schedule: NoiseSchedule,
    mask_id: int,
    frozen: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """x (batch, length) long, t (batch, length) per-position times -> MaskedBatch."""
    if t.shape != x.shape:
        raise ValueError(f"t must have the shape of x (got {tuple(t.shape)}, {tuple(x.shape)})")
    keep = schedule.alpha(t.double())
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64, device="cpu").to(x.device)
    masked = (u >= keep) & ~_frozen_mask(frozen, x.shape, x.device)
    return MaskedBatch(noisy=x.masked_fill(masked, mask_id), masked=masked)


def mask_tokens_in_range(
    x: Tensor,
    t_blocks: Tensor,
    block_sizes: Tensor | int,
    *,
    schedule: NoiseSchedule,
    mask_id: int,
    low: float,
    high: float,
    frozen: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Like ``mask_tokens`` with per-block times, but each block's masked fraction (masked / eligible
    positions) lies in [low, high].

    Exact and loop-free: a block's count k is drawn from Binomial(n, 1 - alpha(t)) conditioned on
    k / n in [low, high] (sampled from the truncated pmf), then k of its n eligible positions are
    chosen uniformly. That is the distribution of "redraw the block's mask until it is in range".
    """
    batch, length = x.shape
    sizes = per_row_block_sizes(block_sizes, batch, length).to(x.device)
    eligible = ~_frozen_mask(frozen, x.shape, x.device)
    block_of = torch.arange(length, device=x.device)[None, :] // sizes[:, None]  # (batch, length)
    n_blocks = int(length // sizes.min())
    if t_blocks.shape[1] < n_blocks:
        raise ValueError(
            f"t_blocks must have >= length // min(block_sizes) = {n_blocks} columns (got {t_blocks.shape[1]})"
        )
    counts = torch.zeros(batch, n_blocks, dtype=torch.long, device=x.device)
    counts.scatter_add_(1, block_of, eligible.long())  # eligible positions per block
    valid_block = torch.arange(n_blocks, device=x.device)[None, :] < (length // sizes)[:, None]
    t = t_blocks[:, :n_blocks].double()
    k = _truncated_binomial(counts, 1.0 - schedule.alpha(t), low, high, valid_block & (counts > 0), generator)
    # rank eligible positions inside their block by a uniform key; the k lowest are masked
    keys = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(x.device)
    keys = keys.masked_fill(~eligible, 2.0) + block_of.double() * 4.0
    order = keys.argsort(dim=1)
    rank_sorted = torch.arange(length, device=x.device).expand(batch, length) - (
        (block_of * sizes[:, None]).gather(1, order)
    )
    rank = torch.empty_like(rank_sorted).scatter_(1, order, rank_sorted)
    masked = eligible & (rank < k.gather(1, block_of))
    return MaskedBatch(noisy=x.masked_fill(masked, mask_id), masked=masked)


def _truncated_binomial(
    n: Tensor, p: Tensor, low: float, high: float, active: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Draw k ~ Binomial(n, p) conditioned on low <= k / n <= high, per entry of (batch, blocks)."""
    n_max = int(n.max()) if n.numel() else 0
    k = torch.arange(n_max + 1, dtype=torch.float64, device=n.device)  # (k,)
    nn_, pp = n.double()[..., None], p.clamp(1e-12, 1 - 1e-12)[..., None]
    log_pmf = (
        torch.lgamma(nn_ + 1)
        - torch.lgamma(k + 1)
        - torch.lgamma((nn_ - k).clamp_min(0) + 1)
        + k * pp.log()
        + (nn_ - k) * torch.log1p(-pp)
    )
    fraction = k / nn_.clamp_min(1)
    # a tiny tolerance so that e.g. 1/2 counts as inside [0.5, 0.9] despite float rounding
    allowed = (k <= nn_) & (fraction >= low - 1e-12) & (fraction <= high + 1e-12)
    impossible = active & ~allowed.any(-1)
    if impossible.any():
        sizes = sorted(set(n[impossible].tolist()))
        raise ValueError(
            f"no masked fraction k/n lies in [low, high] = [{low}, {high}] for blocks with n = {sizes} "
            f"eligible positions; widen the range or use a larger block size"
        )
    log_pmf = log_pmf.masked_fill(~allowed, float("-inf"))
    log_pmf = torch.where(active[..., None], log_pmf, torch.zeros_like(log_pmf))
    gumbel = -torch.log(
        -torch.log(
            torch.rand(log_pmf.shape, generator=generator, dtype=torch.float64)
            .to(n.device)
            .clamp(1e-300, 1.0)
        )
    )
    draw = (log_pmf + gumbel).argmax(-1)
    return torch.where(active, draw, torch.zeros_like(draw))
