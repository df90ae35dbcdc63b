import torch

from dind import models
from dind.schedules import LogLinearSchedule
from dind.training import Objective, disable_activation_checkpointing, enable_activation_checkpointing, nelbo
from dind.training.block_sizes import BLOCK_SIZE_DISTRIBUTIONS


def _loss_and_grads(model, draw, seed):
    torch.manual_seed(seed)  # dropout is on: the recomputation must replay the same masks
    loss = nelbo(
        model, draw.clean, draw.noisy, draw.masked, draw.t_positions, draw.block_sizes, LogLinearSchedule()
    ).loss
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_checkpointed_blocks_give_the_same_loss_gradients_and_state_keys(generator):
    model = models.build("micro", init="random", generator=torch.Generator().manual_seed(0)).train()
    objective = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("bimodal", draft=4, global_size=32))
    clean = torch.randint(0, 256, (4, 32), generator=generator)
    draw = objective.draw(clean, mask_id=model.mask_id, low=1e-3, high=1.0, generator=generator)
    keys = list(model.state_dict())
    plain_loss, plain_grads = _loss_and_grads(model, draw, seed=5)
    assert enable_activation_checkpointing(model) == model.config.n_blocks
    enable_activation_checkpointing(model)  # idempotent
    assert list(model.state_dict()) == keys
    loss, grads = _loss_and_grads(model, draw, seed=5)
    torch.testing.assert_close(loss, plain_loss)
    for a, b in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b)
    disable_activation_checkpointing(model)
    assert all("forward" not in vars(block) for block in model.backbone.blocks)
