"""Sampling: stage plans, confidence tracking, the block sampler and the multi-stage DiD sampler.

``generate(model, plan, length=..., options=GenerateOptions(...))`` runs PAPER Algorithm 1; see
``dind.sampling.multistage``. Decode steps (``DynamicStep``, ``StaticStep``, ...) are in
``dind.models``.
"""

from dind.sampling.block_sampler import StageOutcome, sample_stage, stage_spans
from dind.sampling.confidence import CONFIDENCE_TRACKERS, ConfidenceTracker, initial_scores, record_reveals
from dind.sampling.multistage import continue_plan, generate, regenerate_rows, row_seed
from dind.sampling.nucleus import nucleus_filter, nucleus_keep
from dind.sampling.options import GenerateOptions
from dind.sampling.oracles import MarkovOracle
from dind.sampling.plan import Stage, StagePlan
from dind.sampling.postprocess import truncate_at_eos
from dind.sampling.proposal import ProposalOptions, model_probs, propose
from dind.sampling.refine_cache import REFINE_CACHES, ExactRefine, RefineCache, SkeletonRefine
from dind.sampling.scorers import model_scorer
from dind.sampling.trace import GenerationResult, StageTrace
from dind.sampling.unmasking import (
    UNMASKING_RULES,
    Ancestral,
    ConfidenceThreshold,
    ConfidenceTopK,
    FirstHitting,
    UnmaskingRule,
)

__all__ = [
    "CONFIDENCE_TRACKERS",
    "REFINE_CACHES",
    "UNMASKING_RULES",
    "Ancestral",
    "ConfidenceThreshold",
    "ConfidenceTopK",
    "ConfidenceTracker",
    "ExactRefine",
    "FirstHitting",
    "GenerateOptions",
    "GenerationResult",
    "MarkovOracle",
    "ProposalOptions",
    "RefineCache",
    "SkeletonRefine",
    "Stage",
    "StageOutcome",
    "StagePlan",
    "StageTrace",
    "UnmaskingRule",
    "continue_plan",
    "generate",
    "initial_scores",
    "model_probs",
    "model_scorer",
    "nucleus_filter",
    "nucleus_keep",
    "propose",
    "record_reveals",
    "regenerate_rows",
    "row_seed",
    "sample_stage",
    "stage_spans",
    "truncate_at_eos",
]
