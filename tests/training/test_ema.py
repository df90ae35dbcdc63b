import pytest
import torch

from dind.training import ExponentialMovingAverage


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def test_warm_up_decay_follows_bd3lm():
    ema = ExponentialMovingAverage(_model(), decay=0.9999)
    model = _model()
    seen = []
    for _ in range(5):
        ema.update(model)
        seen.append(ema.current_decay())
    assert seen == pytest.approx([(1 + n) / (10 + n) for n in range(1, 6)])
    ema.updates = 10**6
    assert ema.current_decay() == 0.9999


def test_update_is_the_moving_average():
    model = _model()
    ema = ExponentialMovingAverage(model, decay=0.5)
    start = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # n = 1: decay min(0.5, 2/11) = 2/11
    d = 2 / 11
    for average, before, now in zip(ema.shadow, start, model.parameters(), strict=False):
        torch.testing.assert_close(average, d * before + (1 - d) * now.detach())


def test_swapped_into_restores_raw_weights_and_state_round_trips():
    model = _model()
    ema = ExponentialMovingAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    raw = model[0].weight.detach().clone()
    with ema.swapped_into(model):
        torch.testing.assert_close(model[0].weight, ema.shadow[0])
    assert torch.equal(model[0].weight, raw)
    ema.update(model)
    other = ExponentialMovingAverage(_model(), decay=0.1)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and other.decay == 0.9
    assert all(torch.equal(a, b) for a, b in zip(other.shadow, ema.shadow, strict=False))


def test_decay_validated():
    with pytest.raises(ValueError, match="decay"):
        ExponentialMovingAverage(_model(), decay=1.0)
