import pytest
import torch

from dind.schedules import LogLinearSchedule, PolynomialSchedule
from dind.training import DiffusionForward, Objective, block_diffusion_logits, nelbo, nelbo_from_logits
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS

LENGTH = 32


@pytest.fixture
def draw_for(random_tokens):
    return lambda model, block_sizes, generator: _draw(model, block_sizes, generator, random_tokens)


def _draw(model, block_sizes, generator, random_tokens, *, batch=2):
    clean = random_tokens(model, batch, LENGTH, generator)
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=4))
    return objective.draw(
        clean, mask_id=model.mask_id, low=0.05, high=0.95, generator=generator, block_sizes=block_sizes
    )


def naive_nelbo(model, draw, schedule):
    """Block by block: logits(concat(clean prefix, noisy block), block_size=B) for every block."""
    total = torch.zeros((), dtype=torch.float64)
    for row in range(len(draw.clean)):
        size = int(draw.block_sizes[row])
        for start in range(0, LENGTH, size):
            end = start + size
            tokens = torch.cat([draw.clean[row, :start], draw.noisy[row, start:end]])[None]
            logits = model.logits(tokens, block_size=size)[0, start:end].float()
            logits[:, model.mask_id] = float("-inf")
            log_probs = logits.log_softmax(-1).gather(1, draw.clean[row, start:end, None])[:, 0].double()
            weight = schedule.weight(draw.t_positions[row, start:end].double())
            total += -(weight * log_probs * draw.masked[row, start:end]).sum()
    return total / draw.clean.numel()


@pytest.mark.parametrize("block_sizes", [8, LENGTH, torch.tensor([4, LENGTH])])
def test_vectorised_loss_equals_the_naive_block_loop(micro, generator, block_sizes, draw_for):
    draw = draw_for(micro, block_sizes, generator)
    assert draw.masked.any()
    schedule = LogLinearSchedule()
    with torch.no_grad():
        fast = nelbo(micro, draw.clean, draw.noisy, draw.masked, draw.t_positions, block_sizes, schedule)
    reference = naive_nelbo(micro, draw, schedule)
    torch.testing.assert_close(fast.loss.double(), reference, rtol=1e-4, atol=1e-5)


def test_global_rows_take_the_plain_forward_and_agree_with_the_training_mask(
    micro, generator, monkeypatch, draw_for
):
    draw = draw_for(micro, LENGTH, generator)
    with torch.no_grad():
        vectorised = micro.training_logits(draw.noisy, draw.clean, LENGTH)
        calls = []
        original = micro.training_logits
        monkeypatch.setattr(micro, "training_logits", lambda *a, **k: calls.append(1) or original(*a, **k))
        shortcut = block_diffusion_logits(micro, draw.noisy, draw.clean, torch.full((2,), LENGTH))
    assert calls == []
    torch.testing.assert_close(shortcut, vectorised.float(), rtol=1e-4, atol=1e-4)


class ZeroLogits(torch.nn.Module):
    """Uniform logits: every masked token's CE is log(vocab - 1) once MASK is excluded."""

    vocab_size, mask_id = 11, 10

    def logits(self, tokens, *, block_size=None):
        return torch.zeros(*tokens.shape, self.vocab_size)

    def training_logits(self, noisy, clean, block_sizes):
        return torch.zeros(*noisy.shape, self.vocab_size)


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), PolynomialSchedule(power=2.0)])
def test_closed_form_average_over_all_positions(schedule):
    clean = torch.zeros(2, 8, dtype=torch.long)
    masked = torch.zeros(2, 8, dtype=torch.bool)
    masked[0, 1], masked[1, 5], masked[1, 6] = True, True, True
    noisy = torch.where(masked, 10, clean)
    t = torch.full((2, 8), 0.25)
    t[1, 4:] = 0.5
    result = nelbo(ZeroLogits(), clean, noisy, masked, t, 4, schedule)
    ce = torch.log(torch.tensor(10.0))
    expected = ce * (schedule.weight(torch.tensor(0.25)) + 2 * schedule.weight(torch.tensor(0.5))) / 16
    torch.testing.assert_close(result.loss, expected)
    assert result.tokens == 16 and int(result.masked) == 3
    # per-block means: blocks of 4 positions
    torch.testing.assert_close(result.block_losses[1, 1], ce * 2 * schedule.weight(torch.tensor(0.5)) / 4)
    torch.testing.assert_close(result.block_losses.nansum() * 4 / 16, result.loss)


def test_mask_logit_never_counts():
    logits = torch.zeros(1, 4, 11)
    logits[..., 10] = 100.0  # all mass on MASK: ignored, so CE stays log(10)
    clean = torch.zeros(1, 4, dtype=torch.long)
    masked = torch.ones(1, 4, dtype=torch.bool)
    result = nelbo_from_logits(
        logits, clean, masked, torch.ones(1, 4), torch.tensor([4]), schedule=LogLinearSchedule(), mask_id=10
    )
    torch.testing.assert_close(result.loss, torch.log(torch.tensor(10.0)))


def test_unmasked_batch_has_zero_loss_and_rows_past_their_blocks_are_nan():
    clean = torch.zeros(2, 8, dtype=torch.long)
    none = torch.zeros(2, 8, dtype=torch.bool)
    result = nelbo(
        ZeroLogits(), clean, clean, none, torch.full((2, 8), 0.5), torch.tensor([2, 8]), LogLinearSchedule()
    )
    assert float(result.loss) == 0.0
    assert result.block_losses.shape == (2, 4)
    assert result.block_losses[1, 1:].isnan().all() and not result.block_losses[0].isnan().any()


def test_gradients_flow_through_the_wrapped_forward(micro, generator, draw_for):
    draw = draw_for(micro, torch.tensor([4, LENGTH]), generator)
    forward = DiffusionForward(micro)
    result = nelbo(
        forward,
        draw.clean,
        draw.noisy,
        draw.masked,
        draw.t_positions,
        draw.block_sizes,
        LogLinearSchedule(),
        mask_id=micro.mask_id,
    )
    result.loss.backward()
    grads = [p.grad for p in micro.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    micro.zero_grad(set_to_none=True)


def test_errors_name_the_rule():
    clean = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="must divide length"):
        nelbo(ZeroLogits(), clean, clean, clean.bool(), clean.float(), 3, LogLinearSchedule())
    with pytest.raises(ValueError, match=r"\(2, 8\)"):
        nelbo(ZeroLogits(), clean, clean, clean.bool()[:, :4], clean.float(), 4, LogLinearSchedule())


@pytest.mark.parametrize("block_sizes", [8, LENGTH, torch.tensor([4, LENGTH]), torch.tensor([LENGTH, 4])])
def test_masked_only_projection_equals_the_full_logits_forward_and_backward(
    micro, generator, block_sizes, draw_for
):
    # the output layer only at masked positions: the same loss and gradients as projecting all L
    draw = draw_for(micro, block_sizes, generator)
    sizes = torch.as_tensor(block_sizes).expand(2) if torch.as_tensor(block_sizes).dim() == 0 else block_sizes
    forward = DiffusionForward(micro)
    schedule = LogLinearSchedule()
    results = []
    for where in (None, draw.masked):
        micro.zero_grad()
        logits = forward(draw.noisy, draw.clean, sizes, where)
        if where is not None:
            assert logits.shape == (int(draw.masked.sum()), micro.vocab_size)
        result = nelbo_from_logits(
            logits, draw.clean, draw.masked, draw.t_positions, sizes, schedule=schedule, mask_id=micro.mask_id
        )
        result.loss.backward()
        results.append((result.loss.detach(), [p.grad.clone() for p in micro.parameters()]))
    (full_loss, full_grads), (masked_loss, masked_grads) = results
    torch.testing.assert_close(masked_loss, full_loss, rtol=1e-5, atol=1e-6)
    for masked_grad, full_grad in zip(masked_grads, full_grads, strict=True):
        torch.testing.assert_close(masked_grad, full_grad, rtol=1e-4, atol=1e-6)
    full = forward(draw.noisy, draw.clean, sizes).detach()
    torch.testing.assert_close(
        forward(draw.noisy, draw.clean, sizes, draw.masked).detach(), full[draw.masked]
    )
