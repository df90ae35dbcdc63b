"""The plans of ``dind reproduce``: PAPER Tables 1-2 and Figure 2 analogues for one length.

Every plan's sample i uses the seed ``row_seed(seed, i)``, and stage 1 is the same "D" stage in
every plan, so all plans share the same stage-1 drafts (the runner computes each once and checks
the digests) and differences against the stage-1-only plan are paired, sample by sample.

Each section varies one thing. The step-budget section changes only the budget (one unmasking
rule throughout: ancestral; with ``--quick``, confidence_topk), the rules section only the
unmasking rule (at one budget where the rule takes one), the remasking section only the remasker.
"""

from __future__ import annotations

import attrs

from dind.validation import positive_int


def _judges(value: object) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class ReproduceConfig:
    """What ``dind reproduce`` runs. ``models``: checkpoint dirs (several: a Table 3 section);
    ``judges``: judge dirs (each scores every sample; the report compares their verdicts);
    ``long_row``: also PAPER Table 1's long row (``dind.eval.reproduce_long``; the CLI's default
    except with --quick)."""

    models: tuple[str, ...] = attrs.field(converter=tuple)
    judges: tuple[str, ...] = attrs.field(converter=_judges)
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
    long_row: bool = False  # Table 1's long row: 2x each model's context, with / without windows

    @step_mode.validator
    def _known_step_mode(self, attribute: attrs.Attribute, value: str) -> None:
        from dind.models import DECODE_STEPS

        if value not in DECODE_STEPS:
            raise ValueError(f"step_mode must be one of {list(DECODE_STEPS.names())} (got {value!r})")

    @models.validator
    def _some_models(self, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("models must name at least one checkpoint directory (got none)")

    @judges.validator
    def _some_judges(self, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("judges must name at least one judge directory (got none)")
        names = [name.rstrip("/").rsplit("/", 1)[-1] for name in value]
        if len(set(names)) != len(names):
            raise ValueError(f"judges must have distinct directory names, the report's labels (got {names})")


def sections(config: ReproduceConfig) -> dict[str, tuple[str, ...]]:
    """Section name -> plan texts. The stage-1-only plan ``D`` is the paired baseline of all."""
    d, r = config.draft_block_size, config.ratio
    # --quick refines with 16 confidence-ordered steps per block (first-hitting: one per token)
    fast = "/16{unmasking=confidence_topk}" if config.quick else ""
    refine = f"{d} -> L@{r:g}{fast}"
    budget_rule, budgets = ("confidence_topk", (8, 16)) if config.quick else ("ancestral", (16, 32, 64))
    variants = [f"{d} -> L@{r:g}:{name}{fast}" for name in ("posthoc", "posthoc_masked", "random")]
    sizes = [s for s in (16, 64) if d < s < config.length and config.length % s == 0]
    ratios = (0.25, 0.5, 0.75) if config.quick else (0.1, 0.25, 0.5, 0.75, 0.9)
    result = {
        "table1": (f"{d}", f"{d * 2}", f"{d * 4}", refine),
        "budget": (f"{d}", *(f"{d} -> L@{r:g}/{n}{{unmasking={budget_rule}}}" for n in budgets)),
        "table2": (f"{d}", refine, *variants),
        "figure2_block": (f"{d}", *(f"{d} -> {s}@{r:g}{fast}" for s in sizes), refine),
        "figure2_ratio": (f"{d}", *(f"{d} -> L@{x:g}{fast}" for x in ratios)),
    }
    if not config.quick:
        # the unmasking rule alone: first-hitting (one token per step), the step-budget rules at one
        # budget, and a confidence threshold
        rules = ("ancestral", "confidence_topk")
        result["rules"] = (
            f"{d}", refine, *(f"{d} -> L@{r:g}/32{{unmasking={rule}}}" for rule in rules),
            f"{refine}{{unmasking=confidence_threshold}}",
        )  # fmt: skip
        # nucleus, temperature and tracker: the tracker records the confidences that the NEXT
        # stage's remasker reads, so it is set on stage 1 (on the last stage it would change nothing)
        tracker = f"{d}{{tracker=margin}} -> L@{r:g}"
        result["axes"] = (f"{d}", refine, f"{refine}{{top_p=0.9}}", f"{refine}{{temperature=0.8}}", tracker)
    return result


def all_plans(config: ReproduceConfig) -> tuple[str, ...]:
    """Every distinct plan text, in first-use order."""
    return tuple(dict.fromkeys(plan for plans in sections(config).values() for plan in plans))
