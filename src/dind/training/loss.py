"""The block-diffusion NELBO (BD3-LM), vectorised over [x_t ; x_0], for mixed block sizes.

Per token: ``weight(t) * CE(p_theta(. | x_t, clean prefix), x)`` on masked positions, 0 elsewhere,
averaged over ALL positions of the batch (REFERENCE.md). ``t`` is one time per block. Rows whose
block is the whole sequence use the plain bidirectional forward (the global-block shortcut: the
noisy half of [x_t ; x_0] then sees exactly x_t, so the clean half is wasted compute).

Two layers, so tests can inject masks and times:
- ``nelbo(model, clean, noisy, masked, t_positions, block_sizes, schedule)``: the loss of a given
  noise draw;
- ``Objective.draw`` / ``sample_nelbo``: draw block sizes, times and masks, then ``nelbo``.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from dind.attention.mask_cache import TrainingMaskCache
from dind.masking import per_row_block_sizes
from dind.schedules import NoiseSchedule


@attrs.frozen(eq=False)  # holds tensors
class LossResult:
    """``loss``: differentiable scalar (NELBO per position). ``nll_sum``: detached sum of token
    losses; ``tokens``: positions counted (``nll_sum / tokens`` aggregates over micro-batches and
    ranks). ``masked``: detached count of masked positions. ``block_losses``: detached (batch,
    max_blocks) mean token loss of each block, NaN past a row's last block."""

    loss: Tensor
    nll_sum: Tensor
    tokens: int
    masked: Tensor
    block_losses: Tensor

    @property
    def nll(self) -> Tensor:
        return self.nll_sum / self.tokens


def as_block_size_tensor(block_sizes: int | Tensor, batch: int, length: int) -> Tensor:
    """(batch,) long block sizes on CPU, each dividing ``length``."""
    return per_row_block_sizes(torch.as_tensor(block_sizes).cpu(), batch, length)


def block_diffusion_logits(
    model: Any,
    noisy: Tensor,
    clean: Tensor,
    block_sizes: Tensor,
    *,
    masks: TrainingMaskCache | None = None,
    where: Tensor | None = None,
) -> Tensor:
    """(batch, length) noisy/clean tokens, (batch,) block sizes -> (batch, length, vocab) fp32 logits
    of the noisy half; rows with block size == length take the plain bidirectional forward.
    ``masks``: a cache the training masks come from (None: built for this call). ``where``
    (batch, length) bool: only those logits, (n, vocab) in row-major order; the output layer runs
    only there when the model takes ``where`` (the DiT does), else the full logits are indexed."""
    extra = {} if masks is None else {"masks": masks}
    select = {} if where is None else {"where": where}
    if where is not None and not _takes(model, "where"):
        return block_diffusion_logits(model, noisy, clean, block_sizes, masks=masks)[where]
    length = noisy.shape[1]
    is_global = (block_sizes == length).to(noisy.device)
    n_global = int(is_global.sum())  # one sync per batch picks the path
    if n_global == len(noisy):
        return model.logits(noisy, block_size=None, **select).float()
    sizes = block_sizes if masks is not None else block_sizes.to(noisy.device)
    if n_global == 0:
        return model.training_logits(noisy, clean, sizes, **extra, **select).float()
    rows_global = is_global.nonzero().squeeze(1)
    rows_local = (~is_global).nonzero().squeeze(1)
    local_select = {} if where is None else {"where": where[rows_local]}
    global_select = {} if where is None else {"where": where[rows_global]}
    local = model.training_logits(
        noisy[rows_local], clean[rows_local], sizes[rows_local.to(sizes.device)], **extra, **local_select
    ).float()
    global_ = model.logits(noisy[rows_global], block_size=None, **global_select).float()
    if where is None:
        order = torch.cat([rows_local, rows_global])
        return torch.cat([local, global_])[torch.argsort(order)]
    # each selected entry goes to its row-major place among all rows' selected entries
    place = torch.zeros_like(where, dtype=torch.long)
    place[where] = torch.arange(int(where.sum()), device=where.device)
    out = local.new_empty(int(where.sum()), local.shape[-1])
    out[place[rows_local][where[rows_local]]] = local
    out[place[rows_global][where[rows_global]]] = global_
    return out


class DiffusionForward(nn.Module):
    """``forward(noisy, clean, block_sizes) -> logits`` over a DiT: the one entry point DDP/FSDP wrap
    (their hooks run on ``forward``, not on the DiT's ``logits``/``training_logits`` methods).

    It owns the ``TrainingMaskCache`` its forwards take their masks from: a mask (and its dense /
    flex forms) is built once per (length, block size) and reused by every later step.
    ``cache_masks=False`` builds every mask afresh (the reference the cache is tested against)."""

    def __init__(self, model: nn.Module, *, cache_masks: bool = True):
        super().__init__()
        self.model = model
        self.masks = TrainingMaskCache() if cache_masks and _takes_masks(model) else None

    def forward(
        self, noisy: Tensor, clean: Tensor, block_sizes: Tensor, where: Tensor | None = None
    ) -> Tensor:
        """Full (batch, length, vocab) logits, or only ``logits[where]`` (n, vocab) when given."""
        return block_diffusion_logits(self.model, noisy, clean, block_sizes, masks=self.masks, where=where)


def _takes_masks(model: nn.Module) -> bool:
    """Whether ``model.training_logits`` accepts ``masks=`` (a DiT does; another denoiser may not)."""
    return _takes(model, "masks", ("training_logits",))


def _takes(model: nn.Module, keyword: str, methods: tuple[str, ...] = ("training_logits", "logits")) -> bool:
    """Whether every one of ``model``'s ``methods`` accepts ``keyword``."""
    try:
        return all(keyword in inspect.signature(getattr(model, name)).parameters for name in methods)
    except (AttributeError, TypeError, ValueError):
        return False


def nelbo_from_logits(
    logits: Tensor,
    clean: Tensor,
    masked: Tensor,
    t_positions: Tensor,
    block_sizes: Tensor,
    *,
    schedule: NoiseSchedule,
    mask_id: int,
) -> LossResult:
    """The NELBO of given logits, masks (batch, length) bool, per-position times (batch, length)
    and block sizes (batch,). ``logits``: (batch, length, vocab), or only the masked positions'
    (n_masked, vocab) in row-major order (what ``DiffusionForward(..., where=masked)`` returns)."""
    batch, length = clean.shape
    full = logits.dim() == 3
    if (
        (full and logits.shape[:2] != clean.shape)
        or masked.shape != clean.shape
        or t_positions.shape != clean.shape
    ):
        raise ValueError(
            f"logits (batch, length, vocab), masked and t_positions (batch, length) must match clean "
            f"{tuple(clean.shape)} (got {tuple(logits.shape)}, {tuple(masked.shape)}, "
            f"{tuple(t_positions.shape)})"
        )
    # (masked, vocab): a fresh tensor, safe to edit in place
    selected = logits[masked].float() if full else logits.float().clone()

    selected[:, mask_id] = float("-inf")  # the model must never predict MASK as a clean token
    cross_entropy = torch.nn.functional.cross_entropy(selected, clean[masked], reduction="none")
    weighted = schedule.weight(t_positions[masked].float()) * cross_entropy
    token_loss = torch.zeros(batch, length, dtype=torch.float32, device=logits.device)
    token_loss = token_loss.masked_scatter(masked, weighted)
    loss = token_loss.sum() / (batch * length)
    return LossResult(
        loss=loss,
        nll_sum=token_loss.sum().detach(),
        tokens=batch * length,
        masked=masked.sum().detach(),
        block_losses=_block_means(token_loss.detach(), block_sizes.to(logits.device)),
    )


def _block_means(token_loss: Tensor, block_sizes: Tensor) -> Tensor:
    batch, length = token_loss.shape
    max_blocks = length // int(block_sizes.min())
    block_index = torch.arange(length, device=token_loss.device)[None, :] // block_sizes[:, None]
    sums = torch.zeros(batch, max_blocks, device=token_loss.device).scatter_add_(1, block_index, token_loss)
    means = sums / block_sizes[:, None]
    past_end = torch.arange(max_blocks, device=token_loss.device)[None, :] >= (length // block_sizes)[:, None]
    return means.masked_fill(past_end, float("nan"))


def nelbo(
    model: Any,
    clean: Tensor,
    noisy: Tensor,
    masked: Tensor,
    t_positions: Tensor,
    block_sizes: int | Tensor,
    schedule: NoiseSchedule,
    *,
    mask_id: int | None = None,
) -> LossResult:
    """The NELBO of one noise draw. ``model`` is a DiT (``logits``/``training_logits``) or a module
    whose ``forward(noisy, clean, block_sizes)`` returns logits (``DiffusionForward``, or DDP/FSDP
    around one; then pass ``mask_id``). Through a ``DiffusionForward`` the output layer runs only
    at the masked positions, the only ones the loss reads (forward and backward)."""
    sizes = as_block_size_tensor(block_sizes, *clean.shape)
    if masked.shape != clean.shape or t_positions.shape != clean.shape:
        raise ValueError(
            f"masked and t_positions (batch, length) must match clean {tuple(clean.shape)} "
            f"(got {tuple(masked.shape)}, {tuple(t_positions.shape)})"
        )
    forward = DiffusionForward(model) if hasattr(model, "training_logits") else model
    mask_id = model.mask_id if mask_id is None else mask_id
    # a DiffusionForward (bare or DDP/FSDP-wrapped) projects only the masked positions
    selects = isinstance(forward, DiffusionForward) or isinstance(
        getattr(forward, "module", None), DiffusionForward
    )
    logits = forward(noisy, clean, sizes, masked) if selects else forward(noisy, clean, sizes)
    return nelbo_from_logits(logits, clean, masked, t_positions, sizes, schedule=schedule, mask_id=mask_id)
