"""The attention backend protocol, its registry and the shared shape check."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from dind.attention.masks import AttentionMask
from dind.registry import Registry


@runtime_checkable
class AttentionBackend(Protocol):
    """``(query, key, value, mask) -> out``.

    query (batch, heads, query_length, head_dim); key and value (batch, heads, key_length, head_dim),
    all of one dtype; mask None (every query sees every key) or an ``AttentionMask`` of matching
    lengths. Returns (batch, heads, query_length, head_dim) in the query's dtype. Invariant: equal
    to the "eager" backend's output up to the dtype's rounding.
    """

    def __call__(self, query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> Tensor: ...


ATTENTION_BACKENDS: Registry[AttentionBackend] = Registry(
    "attention_backends", entry_point_group="dind.attention_backends"
)


def check_shapes(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask | None) -> None:
    """Raise a ValueError naming both shapes when the inputs do not fit together."""
    if query.dim() != 4 or key.shape != value.shape or key.dim() != 4:
        raise ValueError(
            "query, key, value must be (batch, heads, length, head_dim) with key.shape == value.shape "
            f"(got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)})"
        )
    if query.shape[:2] != key.shape[:2] or query.shape[3] != key.shape[3]:
        raise ValueError(
            f"query and key must agree on batch, heads, head_dim (got {tuple(query.shape)}, "
            f"{tuple(key.shape)})"
        )
    if mask is not None:
        if (mask.query_length, mask.key_length) != (query.shape[2], key.shape[2]):
            raise ValueError(
                f"mask (query_length, key_length) must match the inputs (got ({mask.query_length}, "
                f"{mask.key_length}), ({query.shape[2]}, {key.shape[2]}))"
            )
        if mask.batch is not None and mask.batch != query.shape[0]:
            raise ValueError(f"mask batch must match the query batch (got {mask.batch}, {query.shape[0]})")
