"""Training masks built once per (length, block size) and reused across steps.

A ``TrainingMaskCache`` is a small LRU owned by whoever runs the training forward (the
``DiffusionForward``); it is passed explicitly, so there is no module-level state that can go
stale. Its entries depend only on their key (length, block size, device), and each memoises its
own dense / flex forms per device, so a second step with the same block sizes evaluates no mask
function and calls ``create_block_mask`` not at all.

A batch whose rows have different block sizes gets a ``StackedTrainingMask``: its rows are the
cached one-size masks, stacked (dense: a gather of the cached (1, 1, 2L, 2L) tensors; flex: the
cached per-size BlockMask tables concatenated along batch). Its results equal a mask built for the
whole batch at once (tests/attention/test_mask_cache.py checks both forms).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dind.attention.masks import AttentionMask, check_block_sizes, training_mask, training_mod


class StackedTrainingMask(AttentionMask):
    """The training mask of a batch with per-row block sizes, assembled from one-size masks."""

    __slots__ = ("parts", "row_index", "sizes")

    def __init__(self, length: int, sizes: Tensor, parts: list[AttentionMask], row_index: Tensor):
        super().__init__(
            training_mod(length, sizes), batch=len(sizes), query_length=2 * length, key_length=2 * length
        )
        self.sizes = sizes  # (batch,) long, on the device the parts were built for
        self.parts = parts  # one cached mask per distinct size
        self.row_index = row_index  # (batch,) long: which part each row uses

    def dense(self, device: torch.device | str | None = None) -> Tensor:
        device = torch.device(device if device is not None else "cpu")

        def build() -> Tensor:
            stacked = torch.cat([part.dense(device) for part in self.parts])  # (parts, 1, 2L, 2L)
            return stacked[self.row_index.to(device)]

        return self.memo(("dense", device), build)

    def flex_block_mask(self, key: Any, create: Callable[..., Any], device: torch.device) -> Any:
        def build() -> Any:
            from torch.nn.attention.flex_attention import BlockMask

            parts = [part.flex_block_mask(key, create, device) for part in self.parts]
            rows = self.row_index.to(device)

            def stack(name: str) -> Tensor | None:
                tables = [getattr(part, name) for part in parts]
                return None if tables[0] is None else torch.cat(tables)[rows]

            return BlockMask.from_kv_blocks(
                stack("kv_num_blocks"),
                stack("kv_indices"),
                stack("full_kv_num_blocks"),
                stack("full_kv_indices"),
                BLOCK_SIZE=parts[0].BLOCK_SIZE,
                mask_mod=self.mask_mod,
                seq_lengths=parts[0].seq_lengths,
            )

        return self.memo(key, build)


class TrainingMaskCache:
    """LRU of one-size training masks keyed explicitly by ``(length, block_size, device)``.

    ``get(length, block_sizes)``: the mask for an int or a (batch,) tensor of sizes. Every row of
    one size -> the cached one-size mask itself (its batch axis broadcasts); mixed sizes -> a
    ``StackedTrainingMask`` over the cached ones; a batch with more distinct sizes than
    ``max_entries`` gets an uncached mask. ``builds`` counts one-size masks made (a miss)."""

    def __init__(self, max_entries: int = 16):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer (got {max_entries!r})")
        self.max_entries = max_entries
        self.builds = 0
        self._entries: OrderedDict[tuple[int, int, torch.device], AttentionMask] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def one_size(self, length: int, block_size: int, device: torch.device | str = "cpu") -> AttentionMask:
        key = (int(length), int(block_size), torch.device(device))
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        check_block_sizes(key[0], key[1])  # on CPU: no device sync
        # the mask function's lookup table lives on the device its index grids will be made on
        size = torch.tensor(key[1], device=key[2])
        mask = AttentionMask(
            training_mod(key[0], size), batch=None, query_length=2 * key[0], key_length=2 * key[0]
        )
        self.builds += 1
        self._entries[key] = mask
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return mask

    def get(
        self, length: int, block_sizes: int | Tensor, device: torch.device | str = "cpu"
    ) -> AttentionMask:
        """The mask for ``block_sizes`` (an int or (batch,) long tensor), for inputs on ``device``."""
        sizes = check_block_sizes(length, block_sizes).cpu()
        device = torch.device(device)
        if sizes.dim() == 0:
            return self.one_size(length, int(sizes), device)
        distinct, row_index = torch.unique(sizes, return_inverse=True)  # one sync: sizes live on CPU
        values = distinct.tolist()
        if len(values) == 1:
            return self.one_size(length, values[0], device)
        if len(values) > self.max_entries:  # more sizes than the cache holds: build this one afresh
            return training_mask(length, sizes.to(device))
        parts = [self.one_size(length, value, device) for value in values]
        return StackedTrainingMask(length, sizes.to(device), parts, row_index.to(device))
