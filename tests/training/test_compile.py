"""The compiled training forward: same losses and gradients as eager, masks never traced."""

import pytest
import torch
from torch._dynamo.utils import counters

from dind import models
from dind.training import TrainConfig, apply_overrides, build_trainer
from dind.training.compile import OpaqueAttention, compile_model
from dind.training.loss import DiffusionForward

LENGTH = 32


def _micro():
    torch.manual_seed(0)
    return models.build("micro", init="random", dropout=0.0).train()


def _loss_and_grads(model, forward, batch):
    model.zero_grad()
    noisy, clean, sizes = batch
    logits = forward(noisy, clean, sizes)
    loss = logits.log_softmax(-1)[..., 7].mean()
    loss.backward()
    return loss.detach(), [parameter.grad.clone() for parameter in model.parameters()]


def test_compiled_wiring_equals_eager_and_is_traced():
    """backend="eager" runs the compiler's tracing (graphs, guards, graph breaks at the opaque
    attention) without generating code: results must be bit-identical to the plain forward."""
    eager, compiled = _micro(), _micro()
    keys = list(compiled.state_dict())
    assert compile_model(compiled, backend="eager") == len(compiled.backbone.blocks) + 1
    assert compile_model(compiled, backend="eager") == len(compiled.backbone.blocks) + 1  # idempotent
    assert isinstance(compiled.attention, OpaqueAttention)
    assert not isinstance(compiled.attention.inner, OpaqueAttention)
    assert list(compiled.state_dict()) == keys and compiled.config.attn_backend == eager.config.attn_backend
    generator = torch.Generator().manual_seed(3)
    counters.clear()
    for sizes in ([4, 32, 8, 4], [8, 8, 32, 32], [4, 4, 4, 4]):  # mixed, then other masks: no retrace
        noisy, clean = (torch.randint(0, 200, (4, LENGTH), generator=generator) for _ in range(2))
        batch = (noisy, clean, torch.tensor(sizes))
        expected = _loss_and_grads(eager, DiffusionForward(eager), batch)
        got = _loss_and_grads(compiled, DiffusionForward(compiled), batch)
        assert torch.equal(got[0], expected[0])
        assert all(torch.equal(a, b) for a, b in zip(got[1], expected[1], strict=True))
    assert counters["stats"]["unique_graphs"] > 0  # the blocks really went through the compiler


def test_compile_option_is_validated(make_config):
    assert make_config().compile is False and make_config("compile=true").compile is True
    with pytest.raises((TypeError, ValueError), match="compile"):
        TrainConfig.from_dict(apply_overrides({}, ["compile=[1]"]))


@pytest.mark.slow
def test_compiled_run_matches_eager_losses(make_config):
    """inductor: two optimizer steps of the micro model, compiled vs eager, losses within float
    tolerance (several minutes on a 2-core CPU: the compile dominates)."""
    options = ("objective.block_sizes=fixed:4", "eval_every=null", "ema_decay=null")
    losses = []
    for compiled in (False, True):
        trainer = build_trainer(make_config(*options, f"compile={str(compiled).lower()}"))
        losses.append([trainer.train_step()["loss"] for _ in range(2)])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
