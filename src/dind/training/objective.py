"""The mixed-scale training objective: draw block sizes, per-block times and masks, score the NELBO.

Randomness comes only from the generator passed in, and the draw is made for the rows given
(on CPU, so a run is reproducible on any device). The trainer draws for the whole global batch
on every rank and keeps its own rows (``NoiseDraw.rows``), so N processes (or N accumulation
micro-steps) see exactly the noise one process would see on the same global batch.

``ObjectiveConfig`` (the config's ``objective`` section) names the components an ``Objective``
is built from; ``ObjectiveConfig.build(length)`` builds it.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
from torch import Tensor

import dind.masking as masking
from dind.schedules import (
    SCHEDULES,
    TIME_SAMPLERS,
    LogLinearSchedule,
    NoiseSchedule,
    StratifiedTimeSampler,
    TimeSampler,
)
from dind.training.block_sizes import (
    BLOCK_SIZE_DISTRIBUTIONS,
    BlockSizeDistribution,
    check_divides,
    parse_block_sizes,
)
from dind.training.components import ComponentSpec, build_component, spec_field, spec_of
from dind.training.fields import one_of
from dind.training.loss import LossResult, as_block_size_tensor, nelbo

BlockSizeDraw = Literal["batch", "sample"]


@attrs.frozen(eq=False)  # holds tensors: compare them with torch.equal
class NoiseDraw:
    """One forward-process draw for a batch: tokens (batch, length) long, ``masked`` (batch, length)
    bool, ``t_positions`` (batch, length) float (each position carries its block's time),
    ``block_sizes`` (batch,) long."""

    clean: Tensor
    noisy: Tensor
    masked: Tensor
    t_positions: Tensor
    block_sizes: Tensor

    def rows(self, index: slice) -> NoiseDraw:
        return NoiseDraw(*(getattr(self, f.name)[index] for f in attrs.fields(NoiseDraw)))

    def to(self, device: torch.device | str) -> NoiseDraw:
        return NoiseDraw(*(getattr(self, f.name).to(device) for f in attrs.fields(NoiseDraw)))


def _distribution(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, BlockSizeDistribution):
        raise TypeError(
            f"{attribute.name} must be a BlockSizeDistribution (support(), probabilities() and "
            f"sample(n, generator=...); parse_block_sizes makes one from text) (got {value!r})"
        )


@attrs.frozen
class Objective:
    """L_mixed = E_{B ~ block_sizes} [ L_BD(x; B) ].

    block_size_draw: "batch" draws one B per batch (every row shares it); "sample" draws one per row
    (a batch mixes rows of draft blocks with whole-sequence rows).
    resample: BD3-LM's resampling of each block's mask until its masked fraction is in [low, high].
    freeze_first_token: position 0 (BOS) is never masked.
    """

    block_sizes: BlockSizeDistribution = attrs.field(validator=_distribution)
    schedule: NoiseSchedule = attrs.field(factory=LogLinearSchedule)
    time_sampler: TimeSampler = attrs.field(factory=StratifiedTimeSampler)
    block_size_draw: BlockSizeDraw = attrs.field(
        default="sample", validator=attrs.validators.in_(("batch", "sample"))
    )
    resample: bool = False
    freeze_first_token: bool = True

    def draw_block_sizes(self, batch: int, *, generator: torch.Generator | None = None) -> Tensor:
        """(batch,) long block sizes."""
        if self.block_size_draw == "batch":
            return self.block_sizes.sample(1, generator=generator).long().expand(batch).clone()
        return self.block_sizes.sample(batch, generator=generator).long()

    def draw(
        self,
        clean: Tensor,
        *,
        mask_id: int,
        low: float,
        high: float,
        generator: torch.Generator | None = None,
        block_sizes: int | Tensor | None = None,
    ) -> NoiseDraw:
        """Noise for ``clean`` (batch, length); ``block_sizes`` fixes B instead of drawing it
        (validation and the variance search use the draft size)."""
        batch, length = clean.shape
        if block_sizes is None:
            block_sizes = self.draw_block_sizes(batch, generator=generator)
        sizes = as_block_size_tensor(block_sizes, batch, length)
        max_blocks = length // int(sizes.min())
        t_blocks = self.time_sampler.sample(batch, max_blocks, low=low, high=high, generator=generator)
        t_positions = masking.block_times_to_positions(t_blocks, sizes, length)
        frozen = None
        if self.freeze_first_token:
            frozen = torch.zeros(batch, length, dtype=torch.bool)
            frozen[:, 0] = True
        if self.resample:
            drawn = masking.mask_tokens_in_range(
                clean,
                t_blocks,
                sizes,
                schedule=self.schedule,
                mask_id=mask_id,
                low=low,
                high=high,
                frozen=frozen,
                generator=generator,
            )
        else:
            drawn = masking.mask_tokens(
                clean,
                t_positions,
                schedule=self.schedule,
                mask_id=mask_id,
                frozen=frozen,
                generator=generator,
            )
        return NoiseDraw(clean, drawn.noisy, drawn.masked, t_positions, sizes)

    def loss(self, model: Any, draw: NoiseDraw, *, mask_id: int | None = None) -> LossResult:
        return nelbo(
            model,
            draw.clean,
            draw.noisy,
            draw.masked,
            draw.t_positions,
            draw.block_sizes,
            self.schedule,
            mask_id=mask_id,
        )


def sample_nelbo(
    model: Any,
    clean: Tensor,
    objective: Objective,
    *,
    low: float,
    high: float,
    generator: torch.Generator | None = None,
    block_sizes: int | Tensor | None = None,
    mask_id: int | None = None,
) -> LossResult:
    """Draw noise for ``clean`` on CPU, move it to the model's device, and score it. ``model`` as in
    ``nelbo`` (a DiT, or a wrapped ``DiffusionForward`` together with ``mask_id``)."""
    mask_id = model.mask_id if mask_id is None else mask_id
    device = next(model.parameters()).device
    draw = objective.draw(
        clean.cpu(), mask_id=mask_id, low=low, high=high, generator=generator, block_sizes=block_sizes
    )
    return objective.loss(model, draw.to(device), mask_id=mask_id)


def _block_sizes_from_text(text: str) -> ComponentSpec:
    """ "bimodal:4,1024,0.1" -> {name: bimodal, draft: 4, global_size: 1024, global_probability: 0.1}."""
    return spec_of(BLOCK_SIZE_DISTRIBUTIONS, text.partition(":")[0].strip(), parse_block_sizes(text))


@attrs.frozen
class ObjectiveConfig:
    """``block_sizes``: a BLOCK_SIZE_DISTRIBUTIONS spec (``{name: bimodal, draft: 4, ...}``, or the
    text form "bimodal:4,1024,0.1", "fixed:4"); ``schedule``: a SCHEDULES spec; ``time_sampler``: a
    TIME_SAMPLERS spec. ``block_size_draw``: one size per batch or per row."""

    block_sizes: ComponentSpec = spec_field(
        BLOCK_SIZE_DISTRIBUTIONS,
        key="objective.block_sizes",
        default="bimodal:4,1024,0.1",
        text=_block_sizes_from_text,
    )
    block_size_draw: BlockSizeDraw = attrs.field(default="sample", validator=one_of("batch", "sample"))
    schedule: ComponentSpec = spec_field(SCHEDULES, key="objective.schedule", default="loglinear")
    time_sampler: ComponentSpec = spec_field(
        TIME_SAMPLERS, key="objective.time_sampler", default="stratified"
    )
    resample: bool = False
    freeze_first_token: bool = True

    def build_block_sizes(self) -> BlockSizeDistribution:
        return build_component(BLOCK_SIZE_DISTRIBUTIONS, self.block_sizes, key="objective.block_sizes")

    def build(self, length: int) -> Objective:
        """The Objective, for sequences of ``length`` tokens (every block size must divide it)."""
        distribution = self.build_block_sizes()
        check_divides(distribution, length)
        return Objective(
            block_sizes=distribution,
            schedule=build_component(SCHEDULES, self.schedule, key="objective.schedule"),
            time_sampler=build_component(TIME_SAMPLERS, self.time_sampler, key="objective.time_sampler"),
            block_size_draw=self.block_size_draw,
            resample=self.resample,
            freeze_first_token=self.freeze_first_token,
        )
