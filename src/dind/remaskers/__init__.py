"""Remaskers: which positions of a finished draft return to MASK before the next stage.

A remasker ranks (``keys``); ``remask`` applies the exact floor(ratio * n_eligible) rule once
for the whole batch. This package never imports ``dind.sampling`` (which imports it).
"""

from dind.remaskers.base import (
    REMASKERS,
    RemaskContext,
    Remasker,
    choose_remasked,
    lowest_k,
    remask,
    remask_counts,
)
from dind.remaskers.posthoc import PostHocRemasker
from dind.remaskers.posthoc_masked import MaskedPostHocRemasker
from dind.remaskers.random import RandomRemasker
from dind.remaskers.snapshot import SnapshotRemasker

__all__ = [
    "REMASKERS",
    "MaskedPostHocRemasker",
    "PostHocRemasker",
    "RandomRemasker",
    "RemaskContext",
    "Remasker",
    "SnapshotRemasker",
    "choose_remasked",
    "lowest_k",
    "remask",
    "remask_counts",
]
