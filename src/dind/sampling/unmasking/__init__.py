"""Unmasking rules: which masked positions of a block the sampler reveals at each step."""

from dind.sampling.unmasking.ancestral import Ancestral, reveal_probability
from dind.sampling.unmasking.base import UNMASKING_RULES, UnmaskingRule
from dind.sampling.unmasking.confidence_threshold import ConfidenceThreshold
from dind.sampling.unmasking.confidence_topk import ConfidenceTopK
from dind.sampling.unmasking.first_hitting import FirstHitting

__all__ = [
    "UNMASKING_RULES",
    "Ancestral",
    "ConfidenceThreshold",
    "ConfidenceTopK",
    "FirstHitting",
    "UnmaskingRule",
    "reveal_probability",
]
