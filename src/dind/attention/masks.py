"""Block-diffusion attention masks, as flex-style mask functions with a lazily built dense form.

A mask function ``mask_mod(batch, head, query, key) -> bool`` says whether a query position may
attend to a key position (True = may attend). It uses only elementwise tensor operations, so the
same function serves flex attention (which vmaps it) and the dense builder (which broadcasts it
over index grids).

Three kinds (REFERENCE.md):
- full bidirectional: no mask at all (``None``); every backend handles it without a mask tensor;
- block-causal with block size B: ``key // B <= query // B``;
- the vectorised training mask over ``[x_t ; x_0]`` (length 2L), with one block size per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def block_causal_mod(block_size: int) -> MaskMod:
    """``key // block_size <= query // block_size``: each block sees itself and every earlier block."""
    _check_positive("block_size", block_size)

    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return key // block_size <= query // block_size

    return mask_mod


def training_mod(length: int, block_sizes: Tensor) -> MaskMod:
    """The block-diffusion training mask over ``[x_t ; x_0]`` (2 * length positions).

    ``block_sizes``: (batch,) long tensor, row b's block size (a scalar tensor: the same for all rows).
    Noisy queries see their own noisy block and strictly earlier clean blocks; clean queries see
    clean blocks up to their own (block-causal). Nothing attends from clean to noisy.
    """

    # block index of each of the 2L positions, per row: a lookup table, because compiled
    # create_block_mask cannot generate code for a division by a per-row size (CPU, torch 2.13)
    offsets = torch.arange(2 * length, device=block_sizes.device) % length
    blocks = offsets // block_sizes[..., None]  # (batch, 2L), or (2L,) for a scalar size

    def mask_mod(batch: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        query_block = blocks[batch, query] if blocks.dim() == 2 else blocks[query]
        key_block = blocks[batch, key] if blocks.dim() == 2 else blocks[key]
        query_noisy = query < length
        key_noisy = key < length
        same_half = query // length == key // length  # (bool == bool) breaks compiled block masks
        diagonal = (query_block == key_block) & same_half
        offset_causal = (query_block > key_block) & query_noisy & ~key_noisy
        clean_causal = (query_block >= key_block) & ~query_noisy & ~key_noisy
        return diagonal | offset_causal | clean_causal

    return mask_mod


class AttentionMask:
    """A mask function with its sizes, and its dense / flex forms built on first use.

    ``batch`` is None when the mask is the same for every row (the dense form then has a batch
    axis of 1 that broadcasts). The built forms are memoised on the object; a mask lives for one
    forward pass, so every layer of that pass shares them.
    """

    __slots__ = ("mask_mod", "batch", "query_length", "key_length", "_built")

    def __init__(self, mask_mod: MaskMod, *, batch: int | None, query_length: int, key_length: int):
        self.mask_mod = mask_mod
        self.batch = batch
        self.query_length = query_length
        self.key_length = key_length
        self._built: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return (
            f"AttentionMask(batch={self.batch}, query_length={self.query_length}, "
            f"key_length={self.key_length})"
        )

    def dense(self, device: torch.device | str | None = None) -> Tensor:
        """(batch or 1, 1, query_length, key_length) bool tensor; True = may attend."""
        device = torch.device(device if device is not None else "cpu")
        key = ("dense", device)
        if key not in self._built:
            rows = self.batch or 1
            batch = torch.arange(rows, device=device).view(rows, 1, 1, 1)
            head = torch.zeros(1, 1, 1, 1, dtype=torch.long, device=device)
            query = torch.arange(self.query_length, device=device).view(1, 1, -1, 1)
            key_index = torch.arange(self.key_length, device=device).view(1, 1, 1, -1)
            self._built[key] = self.mask_mod(batch, head, query, key_index).expand(
                rows, 1, self.query_length, self.key_length
            )
        return self._built[key]

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """Backend-specific forms (a flex BlockMask, ...) built once per mask."""
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def flex_block_mask(self, key: Any, create: Callable[..., Any], device: torch.device) -> Any:
        """The flex ``BlockMask``, made once per ``key`` by ``create`` (``create_block_mask`` or its
        compiled form) with this mask's function and sizes."""
        return self.memo(
            key,
            lambda: create(
                self.mask_mod, self.batch, None, self.query_length, self.key_length, device=device
            ),
        )


def block_causal_mask(length: int, block_size: int) -> AttentionMask:
    """Block-causal attention over ``length`` positions (the last block may be shorter)."""
    _check_positive("length", length)
    return AttentionMask(block_causal_mod(block_size), batch=None, query_length=length, key_length=length)


def training_mask(length: int, block_sizes: int | Tensor) -> AttentionMask:
    """The vectorised training mask over 2 * length positions; ``block_sizes`` an int or (batch,) long
    tensor of per-row sizes, each dividing ``length``."""
    _check_positive("length", length)
    sizes = check_block_sizes(length, block_sizes)
    batch = None if sizes.dim() == 0 else int(sizes.shape[0])
    return AttentionMask(
        training_mod(length, sizes), batch=batch, query_length=2 * length, key_length=2 * length
    )


def check_block_sizes(length: int, block_sizes: int | Tensor, *, batch: int | None = None) -> Tensor:
    """A long tensor of block sizes (scalar, or (batch,)) after checking each divides ``length``."""
    if isinstance(block_sizes, bool) or not isinstance(block_sizes, int | Tensor):
        raise TypeError(
            f"block_sizes must be an int or a (batch,) long tensor (got {type(block_sizes).__name__})"
        )
    if isinstance(block_sizes, Tensor) and (block_sizes.is_floating_point() or block_sizes.is_complex()):
        raise TypeError(f"block_sizes must hold integers (got dtype {block_sizes.dtype})")
    sizes = torch.as_tensor(block_sizes, dtype=torch.long)
    if sizes.dim() > 1 or (batch is not None and sizes.dim() == 1 and sizes.shape[0] != batch):
        raise ValueError(
            f"block_sizes must be an int or have shape (batch,) = ({batch},) (got {tuple(sizes.shape)})"
        )
    if bool(((sizes < 1) | (length % sizes.clamp(min=1) != 0)).any()):
        bad = sorted(set(sizes.flatten().tolist()))
        raise ValueError(f"block_sizes must be positive and divide length (got {bad}, {length})")
    return sizes


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
