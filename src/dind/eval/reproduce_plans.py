"""The plans of ``dind reproduce``: PAPER Tables 1-2 and Figure 2 analogues for one length.

Every plan's sample i uses the seed ``row_seed(seed, i)``, and stage 1 is the same "D" stage in
every plan, so all plans share the same stage-1 drafts (the runner computes each once and checks
the digests) and differences
against the stage-1-only plan are paired, sample by sample.
"""

from __future__ import annotations

import attrs

from dind.validation import positive_int


@attrs.frozen
class ReproduceConfig:
    """What ``dind reproduce`` runs. ``models``: checkpoint dirs (several: a Table 3 section)."""

    models: tuple[str, ...] = attrs.field(converter=tuple)
    judge: str
    out: str = "dind-reproduce-out"
    length: int = attrs.field(default=256, validator=positive_int)
    num_samples: int = attrs.field(default=16, validator=positive_int)
    batch_size: int = attrs.field(default=8, validator=positive_int)
    seed: int = 0
    draft_block_size: int = attrs.field(default=4, validator=positive_int)
    ratio: float = 0.5
    quick: bool = False
    overwrite: bool = False
    device: str = "cpu"
    share_drafts: bool = True  # False: every plan recomputes its stage-1 draft (same tokens, slower)
    step_mode: str = attrs.field(default="dynamic")  # a DECODE_STEPS name: the same samples

    @step_mode.validator
    def _known_step_mode(self, attribute: attrs.Attribute, value: str) -> None:
        from dind.models import DECODE_STEPS

        if value not in DECODE_STEPS:
            raise ValueError(f"step_mode must be one of {list(DECODE_STEPS.names())} (got {value!r})")

    @models.validator
    def _some_models(self, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("models must name at least one checkpoint directory (got none)")


def sections(config: ReproduceConfig) -> dict[str, tuple[str, ...]]:
    """Section name -> plan texts. The stage-1-only plan ``D`` is the paired baseline of all."""
    d, r, length = config.draft_block_size, config.ratio, config.length
    # --quick refines with 16 confidence-ordered steps per block (first-hitting: one per token)
    fast = "/16{unmasking=confidence_topk}" if config.quick else ""
    refine = f"{d} -> L@{r:g}{fast}"
    table1 = (f"{d}", f"{d * 2}", f"{d * 4}", refine)
    if not config.quick:
        table1 += (f"{refine}/16{{unmasking=confidence_topk}}", f"{refine}/64{{unmasking=confidence_topk}}")
    variants = [f"{d} -> L@{r:g}:{name}{fast}" for name in ("posthoc", "posthoc_masked", "random")]
    table2 = (f"{d}", refine, *variants)
    sizes = [s for s in (16, 64) if d < s < length and length % s == 0]
    figure2_block = (f"{d}", *(f"{d} -> {s}@{r:g}{fast}" for s in sizes), refine)
    ratios = (0.25, 0.5, 0.75) if config.quick else (0.1, 0.25, 0.5, 0.75, 0.9)
    figure2_ratio = (f"{d}", *(f"{d} -> L@{x:g}{fast}" for x in ratios))
    result = {
        "table1": table1,
        "table2": table2,
        "figure2_block": figure2_block,
        "figure2_ratio": figure2_ratio,
    }
    if not config.quick:  # the sampling axes: nucleus, temperature, tracker, unmasking rule
        options = ("top_p=0.9", "temperature=0.8", "unmasking=confidence_threshold")
        # the tracker records the confidences that the NEXT stage's remasker reads, so it is set on
        # stage 1 (on the last stage of a 2-stage plan it would change nothing)
        tracker = f"{d}{{tracker=margin}} -> L@{r:g}"
        result["axes"] = (f"{d}", refine, *(f"{refine}{{{option}}}" for option in options), tracker)
    return result


def all_plans(config: ReproduceConfig) -> tuple[str, ...]:
    """Every distinct plan text, in first-use order."""
    return tuple(dict.fromkeys(plan for plans in sections(config).values() for plan in plans))
