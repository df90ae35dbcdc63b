"""Remaskers: which positions of a finished draft return to MASK before the next stage."""

from dind.remaskers.base import REMASKERS, Remasker, lowest_k, remask_counts
from dind.remaskers.posthoc import PostHocRemasker
from dind.remaskers.posthoc_masked import MaskedPostHocRemasker
from dind.remaskers.random import RandomRemasker
from dind.remaskers.snapshot import SnapshotRemasker

__all__ = [
    "REMASKERS",
    "MaskedPostHocRemasker",
    "PostHocRemasker",
    "RandomRemasker",
    "Remasker",
    "SnapshotRemasker",
    "lowest_k",
    "remask_counts",
]
