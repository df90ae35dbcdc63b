"""Training composed from objects: the Trainer takes built components; TrainConfig.build() is only
a builder (parity); LambdaLR reproduces the schedules exactly; old checkpoints resume; plugins and
{name, **options} component specs in a config."""

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dind import models
from dind.data import CORPORA, TOKENIZERS
from dind.outputs import record_checksums
from dind.registry import RegistryError
from dind.training import (
    BLOCK_SIZE_DISTRIBUTIONS,
    LR_SCHEDULES,
    ComponentSpec,
    Objective,
    TrainConfig,
    Trainer,
    TrainingData,
    apply_overrides,
    build_adamw,
    build_trainer,
    find_checkpoint,
    lambda_lr,
    read_trainer_state,
    seek,
)
from dind.training.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
FAST = ("steps=2", "eval_every=2", "save_every=2", "eval_at_start=false")


def _by_hand(config, out_dir, *, block_sizes=None, make_optimizer=None, steps=4):
    """The components build_trainer makes for ``config``, made by hand from objects."""
    torch.manual_seed(config.seed)
    model = models.build(config.model.preset.name)
    torch.manual_seed(config.seed)
    source = CORPORA.build(config.data.corpus.name, **config.data.corpus.options)
    data = TrainingData.from_corpus(
        source,
        TOKENIZERS.build(config.data.tokenizer.name),
        length=32,
        cache_dir=config.data.cache_dir,
        validation_fraction=0.2,
    )
    block_sizes = block_sizes or BLOCK_SIZE_DISTRIBUTIONS.build(
        "bimodal", draft=4, global_size=32, global_probability=0.25
    )
    optimizer = (make_optimizer or (lambda m: build_adamw(m.named_parameters(), lr=1e-3)))(model)
    scheduler = lambda_lr(optimizer, LR_SCHEDULES.build("constant", warmup_steps=2))
    return Trainer(
        model,
        Objective(block_sizes=block_sizes),
        data,
        optimizer,
        scheduler,
        steps=steps,
        batch_size=4,
        log_every=1,
        eval_every=2,
        eval_batches=2,
        eval_at_start=False,
        save_every=2,
        progress=False,
        out_dir=out_dir,
    )


def test_hand_built_trainer_equals_the_config_built_one(make_config, tmp_path):
    config = make_config(*FAST, f"out_dir={tmp_path / 'config'}")
    build_trainer(config).fit()
    _by_hand(config, tmp_path / "hand", steps=2).fit()
    a, b = (read_trainer_state(find_checkpoint(tmp_path / name)) for name in ("config", "hand"))
    assert a["step"] == b["step"] == 2 and a["data"] == b["data"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = lambda path: [
        {k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in read_metrics(path)
    ]  # noqa: E731
    assert strip(tmp_path / "config" / "metrics.jsonl") == strip(tmp_path / "hand" / "metrics.jsonl")
    assert (tmp_path / "config" / "config.yaml").is_file() and not (
        tmp_path / "hand" / "config.yaml"
    ).exists()


class EvenSizes:
    """A block-size law written in the test: 8 or 16, equally likely; remembers what it drew."""

    def __init__(self):
        self.drawn = []

    def support(self):
        return (8, 16)

    def probabilities(self):
        return (0.5, 0.5)

    def sample(self, n, *, generator=None):
        sizes = torch.tensor([8, 16])[torch.randint(0, 2, (n,), generator=generator)]
        self.drawn += sizes.tolist()
        return sizes


def test_swapped_components_are_used(make_config, tmp_path):
    config = make_config()
    sizes = EvenSizes()
    sgd = lambda model: torch.optim.SGD(model.parameters(), lr=0.5)  # noqa: E731
    trainer = _by_hand(config, tmp_path / "even", block_sizes=sizes, make_optimizer=sgd)
    trainer.fit()
    assert len(sizes.drawn) == 4 * 4 and set(sizes.drawn) <= {8, 16}  # one size per row, every step
    records = read_metrics(tmp_path / "even" / "metrics.jsonl")
    evals = [r for r in records if r["kind"] == "eval"]
    assert {"val_nelbo_block8", "val_nelbo_block16"} <= set(evals[0]) and "val_nelbo_block4" not in evals[0]
    assert [r["lr"] for r in records if r["kind"] == "train"] == [0.25, 0.5, 0.5, 0.5]  # SGD's 0.5, warm-up 2
    with pytest.raises(ValueError, match="optimizer must hold the model's parameters only"):
        _by_hand(config, tmp_path / "x", make_optimizer=lambda _: sgd(models.build("micro")))


def test_trainer_checks_its_components(make_config, tmp_path):
    trainer = _by_hand(make_config(), tmp_path / "a")
    other = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="LambdaLR on the optimizer given"):
        Trainer(trainer.model, trainer.objective, trainer.data, other, trainer.scheduler, steps=1)
    with pytest.raises(TypeError, match="objective must be a dind.training.Objective"):
        Trainer(trainer.model, "bimodal", trainer.data, trainer.optimizer, trainer.scheduler)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        Trainer(trainer.model, trainer.objective, trainer.data, trainer.optimizer, trainer.scheduler, steps=0)
    with pytest.raises(ValueError, match="every block size must divide the sequence length"):
        bad = Objective(block_sizes=BLOCK_SIZE_DISTRIBUTIONS.build("fixed", size=5))
        Trainer(trainer.model, bad, trainer.data, trainer.optimizer, trainer.scheduler)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(LR_SCHEDULES.names()),
    warmup=st.integers(0, 20),
    total=st.integers(1, 60),
    lr=st.floats(1e-6, 1.0),
    at=st.integers(0, 80),
)
def test_lambda_lr_gives_the_schedule_rates_exactly(name, warmup, total, lr, at):
    schedule = LR_SCHEDULES.build(name, warmup_steps=warmup, total_steps=total)
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = lambda_lr(optimizer, schedule)
    for step in range(at + 1):
        assert optimizer.param_groups[0]["lr"] == lr * schedule.factor(step)  # bitwise: today's formula
        if step < at:
            optimizer.step()
            scheduler.step()
    fresh = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)
    jumped = lambda_lr(fresh, schedule)
    seek(jumped, at)  # resuming: the same rate and position without replaying the steps
    assert fresh.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert jumped.last_epoch == scheduler.last_epoch and jumped.get_last_lr() == scheduler.get_last_lr()


def _as_format_1(state):
    """A trainer_state.pt as written before the LambdaLR (no scheduler, no format, no initial_lr)."""
    old = {key: value for key, value in state.items() if key not in ("scheduler", "format")}
    groups = [
        {k: v for k, v in group.items() if k != "initial_lr"} for group in state["optimizer"]["param_groups"]
    ]
    old["optimizer"] = {**state["optimizer"], "param_groups": groups}
    return old


def test_old_checkpoints_resume_exactly_and_bad_layouts_are_refused(make_config, tmp_path):
    overrides = ("eval_every=null", "save_every=null", "optim.lr_schedule=cosine", "optim.warmup_steps=1")
    build_trainer(make_config(*overrides, f"out_dir={tmp_path / 'straight'}")).fit()
    build_trainer(make_config(*overrides, "steps=2", f"out_dir={tmp_path / 'split'}")).fit()
    path = find_checkpoint(tmp_path / "split") / "trainer_state.pt"
    state = torch.load(path, weights_only=True)
    assert state["format"] == 2 and state["scheduler"]["last_epoch"] == 2
    torch.save(_as_format_1(state), path)
    record_checksums(path.parent, [path.name])  # rewritten on purpose: record its new bytes
    resumed = build_trainer(make_config(*overrides, f"out_dir={tmp_path / 'split'}"))
    assert resumed.resume(tmp_path / "split") == 2
    assert resumed.optimizer.param_groups[0]["initial_lr"] == 1e-3
    resumed.fit()
    a, b = (read_trainer_state(find_checkpoint(tmp_path / name)) for name in ("straight", "split"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    with pytest.raises(ValueError, match=r"format must be 1 or 2 \(got 3\)"):
        resumed.load_state_dict({**state, "format": 3})
    with pytest.raises(ValueError, match=r"lacks \['optimizer'\]"):
        resumed.load_state_dict({k: v for k, v in state.items() if k != "optimizer"})


def test_plugins_and_component_specs_in_a_config(make_config, tmp_path):
    plugin = str(ROOT / "examples" / "geometric_block_sizes.py")
    spec = "objective.block_sizes={name: geometric, smallest: 4, largest: 32, decay: 0.5}"
    trainer = build_trainer(make_config(f"plugins=[{plugin}]", spec, "steps=1", "eval_every=null"))
    assert type(trainer.objective.block_sizes).__name__ == "GeometricBlockSize"
    assert trainer.objective.block_sizes.support() == (4, 8, 16, 32)
    assert trainer.config.objective.block_sizes == ComponentSpec(
        "geometric", {"smallest": 4, "largest": 32, "decay": 0.5}
    )  # stored (and saved) as one spec: name and options
    assert TrainConfig.from_dict(apply_overrides(trainer.config.to_dict(), [])) == trainer.config
    trainer.fit()


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            ("objective.block_sizes={name: zipf}",),
            RegistryError,
            r"objective.block_sizes: unknown block_size_distributions 'zipf'; known names: .*bimodal",
        ),
        (
            ("objective.block_sizes={name: bimodal, draft: 4, width: 3}",),
            ValueError,
            r"objective.block_sizes 'bimodal' does not take options \['width'\] "
            r"\(accepted: \['draft', 'global_size', 'global_probability'\]\)",
        ),
        (
            ("optim.lr_schedule_options={floor: 0.1}",),
            ValueError,
            r"optim.lr_schedule 'constant' does not take options \['floor'\]",
        ),
        (
            ("plugins=[/nonexistent/plugin.py]",),
            Exception,
            r"plugin file not found: '/nonexistent/plugin.py'",
        ),
        (("model.preset=giant",), RegistryError, r"model.preset: unknown"),
        (
            ("model.init=micro",),
            ValueError,
            r"model.init must be a checkpoint directory or hub id \(got the preset",
        ),
    ],
)
def test_component_errors_name_the_key(make_config, overrides, error, message):
    with pytest.raises(error, match=message):
        build_trainer(make_config(*overrides))
