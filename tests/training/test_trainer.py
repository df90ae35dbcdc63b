import json

import pytest
import torch
import yaml

from dind import models
from dind.training import TRAINERS, TrainConfig, Trainer, build_trainer, find_checkpoint, read_trainer_state
from dind.training.metrics import read_metrics


def test_default_trainer_is_registered():
    assert TRAINERS.get("default") is Trainer


def test_short_run_logs_evaluates_and_checkpoints(make_config, tmp_path):
    config = make_config(
        "variance.enabled=true", "variance.batches=2", "variance.widths=[0.5]", "variance.step=0.5"
    )
    trainer = build_trainer(config)
    trainer.fit()
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3, 4] and [r["step"] for r in evals] == [0, 2, 4]
    for key in ("loss", "nll", "lr", "tokens_per_s", "grad_norm", "eps_min", "eps_max"):
        assert all(r[key] is not None for r in train), key
    assert {"val_nelbo", "val_nelbo_block4", "val_nelbo_block32"} <= set(evals[0])
    assert any(r["kind"] == "variance" for r in records)
    assert train[0]["lr"] == pytest.approx(0.5e-3) and train[1]["lr"] == pytest.approx(1e-3)  # warm-up

    checkpoint = find_checkpoint(tmp_path / "run")
    published = models.from_pretrained(checkpoint)
    state = read_trainer_state(checkpoint)
    assert state["step"] == 4 and set(state) >= {"model", "optimizer", "ema", "rng", "data"}
    ema = {name.removeprefix("model."): value for name, value in state["ema"]["shadow"].items()}
    for name, parameter in published.named_parameters():
        assert torch.equal(parameter.detach(), ema[name]), name  # model.safetensors holds the EMA
    # the searched interval travels in the checkpoint's buffers
    assert float(published.sampling_eps_min) == pytest.approx(float(trainer.model.sampling_eps_min))
    saved = TrainConfig.from_dict(yaml.safe_load((checkpoint / "train_config.yaml").read_text()))
    assert saved == config
    # config.json states the drafting block (the mix's smallest), as BD3-LM's model class reads it
    assert json.loads((checkpoint / "config.json").read_text())["block_size"] == 4


def test_interrupt_saves_the_last_completed_step(make_config, tmp_path, monkeypatch):
    trainer = build_trainer(make_config("save_every=null", "eval_every=null"))
    original, calls = trainer.train_step, []

    def interrupted():
        calls.append(1)
        if len(calls) == 3:
            trainer.train_batches.next(4)  # consume data, as a real step would, before the interrupt
            raise KeyboardInterrupt
        return original()

    monkeypatch.setattr(trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    state = read_trainer_state(find_checkpoint(tmp_path / "run"))
    assert state["step"] == 2
    assert (
        state["data"]["cursor"] == 8 or state["data"]["epoch"] > 0
    )  # the interrupted step's rows were rolled back


def test_batch_geometry_and_vocabulary_checks(make_config):
    with pytest.raises(ValueError, match="batch_size must be a multiple"):
        build_trainer(make_config("batch_size=6", "micro_batch_size=4"))
    config = make_config(
        "data.tokenizer=bytes" if models.build("micro").vocab_size != 258 else "data.tokenizer=gpt2"
    )
    with pytest.raises(ValueError, match="needs a model vocabulary"):
        build_trainer(config)


def test_gradient_accumulation_matches_one_big_batch(make_config, tmp_path):
    """Same global batch and noise: 2 micro-steps of 2 rows == 1 step of 4 rows (dropout off)."""
    results = []
    for micro_batch in (4, 2):
        trainer = build_trainer(
            make_config(
                f"micro_batch_size={micro_batch}",
                "steps=1",
                "eval_every=null",
                "save_every=null",
                "ema_decay=null",
                f"out_dir={tmp_path / str(micro_batch)}",
            )
        )
        trainer.model.eval()  # no dropout: the two runs differ only in how rows are grouped
        metrics = trainer.train_step()
        results.append((metrics["nll"], [p.detach().clone() for p in trainer.model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for a, b in zip(results[0][1], results[1][1], strict=False):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _dind_train(argv):
    import argparse

    from dind.cli import train as command

    parser = argparse.ArgumentParser(prog="dind train")
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_cli_trains_from_a_config_file_with_overrides(make_config, tmp_path, capsys):
    main = lambda argv: _dind_train(argv[1:])  # noqa: E731  (argv as given to `dind`)

    config_path = tmp_path / "config.yaml"
    config_path.write_text(make_config().to_yaml())
    assert (
        main(
            [
                "train",
                "--config",
                str(config_path),
                "steps=2",
                "objective.block_sizes=fixed:8",
                "eval_every=null",
            ]
        )
        == 0
    )
    state = read_trainer_state(find_checkpoint(tmp_path / "run"))
    assert state["step"] == 2
    assert main(["train", "--config", str(config_path), "steps=3", "eval_every=null", "--resume"]) == 0
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 3
    # the config file lacks the override: resuming says what differs from the checkpoint's config
    assert "objective.block_sizes: {'name': 'fixed', 'size': 8} -> " in capsys.readouterr().err
    # --resume PATH without --config continues with the checkpoint's own config
    assert main(["train", "--resume", str(tmp_path / "run"), "steps=4"]) == 0
    state = read_trainer_state(find_checkpoint(tmp_path / "run"))
    err = capsys.readouterr().err
    assert state["step"] == 4 and "block_sizes" not in err  # only the step count changed, and is stated
    assert "steps: 3 -> 4" in err and "equals one trained with the new config" in err
    # an optimizer implementation that the checkpoint's optimizer state overrides is stated, not silent
    assert main(["train", "--resume", str(tmp_path / "run"), "steps=5", "optim.implementation=for_loop"]) == 0
    assert "optim.implementation 'for_loop' is not applied" in capsys.readouterr().err
    # an override right after a bare --resume is not taken for its path
    assert main(["train", "--config", str(config_path), "eval_every=null", "--resume", "steps=6"]) == 0
    assert "read as a bare --resume and the override steps=6" in capsys.readouterr().err
    assert read_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 6
    assert main(["train", "--config", str(config_path), "--print-config"]) == 0


@pytest.mark.parametrize(("steps", "final_at"), [(4, "periodic"), (3, "after the loop")])
def test_the_initial_and_final_evaluations_are_announced_with_their_size(
    make_config, capsys, steps, final_at
):
    # eval_every=2: with 4 steps the final evaluation is the periodic one at step 4; with 3 it runs after
    build_trainer(make_config(f"steps={steps}", "progress=true", "save_every=null")).fit()
    lines = [line.split("\r")[-1] for line in capsys.readouterr().err.splitlines() if "evaluation" in line]
    size = "2 batches of 4 x 32 tokens at block sizes 4, 32 (4 forward passes)"
    assert [line for line in lines if " at step " in line] == [
        f"initial evaluation at step 0: {size}", f"final evaluation at step {steps}: {size}"
    ]  # fmt: skip
    done = [line for line in lines if "evaluation done in" in line]
    assert [line.split()[0] for line in done] == ["initial", "final"]
    assert all(" s: val_nelbo " in line for line in done)


def test_an_evaluation_describes_the_variance_search_when_it_runs_with_it(make_config):
    config = make_config(
        "variance.enabled=true", "variance.batches=2", "variance.widths=[0.5]", "variance.step=0.5"
    )
    trainer = build_trainer(config)
    assert trainer.validation.describe(32) == (
        "2 batches of 4 x 32 tokens at block sizes 4, 32 (4 forward passes), then the variance search "
        "(3 intervals on 2 batches)"
    )
    assert build_trainer(make_config("objective.block_sizes=fixed:4")).validation.describe(32) == (
        "2 batches of 4 x 32 tokens at block size 4 (2 forward passes)"
    )


def test_a_warm_up_longer_than_the_run_is_warned_about_at_start(make_config, capsys):
    build_trainer(make_config("optim.warmup_steps=10", "eval_every=null")).fit()
    err = capsys.readouterr().err
    assert "warning: the learning rate never reaches its peak 0.001 (optim.lr) in this run's 4 steps" in err
    trainer = make_config(
        "optim.warmup_steps=2", "eval_every=null", "out_dir=" + str(make_config().out_dir) + "-2"
    )
    build_trainer(trainer).fit()
    assert "learning rate" not in capsys.readouterr().err  # full rate from step 1 of 4


def test_validation_noise_follows_eval_seed_not_the_run_seed(make_config):
    """Runs that differ only in ``seed`` evaluate the same weights on the same noise draws."""
    first, second = build_trainer(make_config("seed=0")), build_trainer(make_config("seed=1"))
    second.validation.model.load_state_dict(first.validation.model.state_dict())
    assert first.validation.evaluate() == second.validation.evaluate()
    other = build_trainer(make_config("seed=1", "eval_seed=5"))
    other.validation.model.load_state_dict(first.validation.model.state_dict())
    assert other.validation.evaluate() != first.validation.evaluate()
