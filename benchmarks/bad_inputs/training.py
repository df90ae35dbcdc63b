"""Bad inputs and faults for `dind train` and the training library."""

from __future__ import annotations

from pathlib import Path


def cli(argv):  # the dind command in-process
    from dind.cli import main

    try:
        return int(main(argv) or 0)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def _base(tmp: Path) -> list[str]:
    corpus = tmp / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n\n" * 40)
    return [
        "model.preset=micro",
        "data.tokenizer=bytes",
        "data.length=32",
        f"data.cache_dir={tmp / 'cache'}",
        f"data.corpus_options={{paths: [{corpus}], document_delimiter: '\\n\\n'}}",
        "data.validation_fraction=0.2",
        "objective.block_sizes=fixed:4",
        "steps=1",
        "batch_size=2",
        "eval_every=null",
        "save_every=null",
        "progress=false",
        "optim.warmup_steps=0",
        f"out_dir={tmp / 'run'}",
    ]


def train(*extra: str):
    return lambda tmp: cli(["train", *_base(tmp), *extra])


def config_file(text: str, *extra: str):
    def action(tmp: Path):
        path = tmp / "config.yaml"
        path.write_text(text)
        return cli(["train", "--config", str(path), *extra])

    return action


def twice(*second: str):
    def action(tmp: Path):
        cli(["train", *_base(tmp)])
        return cli(["train", *_base(tmp), *second])

    return action


def locked(tmp: Path):
    from dind.training.rundir import RunLock

    with RunLock(tmp / "run"):
        return cli(["train", *_base(tmp)])


def copied_into_other_run(tmp: Path):
    import shutil

    cli(["train", *_base(tmp)])
    shutil.copytree(tmp / "run", tmp / "copy")
    return cli(["train", *_base(tmp), "steps=2", "--resume", str(tmp / "copy")])


def nan_loss(tmp: Path):
    from dind.training import TrainConfig, apply_overrides

    trainer = TrainConfig.from_dict(apply_overrides({}, _base(tmp))).build()
    trainer.forward.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    trainer.fit()


def long_warm_up(tmp: Path):  # the trainer from Python: its warning is then all of stderr
    from dind.training import TrainConfig, apply_overrides

    TrainConfig.from_dict(apply_overrides({}, [*_base(tmp), "optim.warmup_steps=10"])).build().fit()


def inf_lr(tmp: Path):
    return cli(["train", *_base(tmp), "optim.lr=.inf"])


CASES = [
    ("loggers=tensorboard (not a list)", train("loggers=tensorboard")),
    ("loggers=[tb] (unknown logger)", train("loggers=[tb]")),
    ("loggers: wandb with an unknown option", train("loggers=[{name: wandb, mood: calm}]")),
    ("loggers: wandb mode shared", train("loggers=[{name: wandb, mode: shared}]")),
    ("loggers: wandb tags as a string", train("loggers=[{name: wandb, tags: nightly}]")),
    ("loggers: tensorboard twice", train("loggers=[tensorboard, tensorboard]")),
    ("warmup_steps > steps (a warning, not an error)", long_warm_up),
    ("unknown top-level key", train("stepz=3")),
    ("unknown nested key", train("optim.lrr=1")),
    ("steps=0", train("steps=0")),
    ("steps=-5", train("steps=-5")),
    ("steps=true", train("steps=true")),
    ("batch_size=0", train("batch_size=0")),
    ("batch_size not a multiple of micro_batch_size", train("batch_size=3", "micro_batch_size=2")),
    ("lr=0", train("optim.lr=0")),
    ("lr=-1e-3", train("optim.lr=-1e-3")),
    ("lr not a number", train("optim.lr=fast")),
    ("lr infinite", inf_lr),
    ("betas of three values", train("optim.betas=[0.9, 0.99, 0.9]")),
    ("weight_decay negative", train("optim.weight_decay=-0.1")),
    ("unknown lr_schedule", train("optim.lr_schedule=linear")),
    ("ema_decay=1", train("ema_decay=1.0")),
    ("precision=fp16", train("precision=fp16")),
    ("distributed=horovod", train("distributed=horovod")),
    ("distributed=ddp without torchrun", train("distributed=ddp")),
    ("block size does not divide the length", train("objective.block_sizes=fixed:5")),
    ("unknown block-size distribution", train("objective.block_sizes=zipf:4")),
    (
        "text block sizes with options",
        train("objective.block_sizes=fixed:4", "objective.block_size_options={size: 4}"),
    ),
    ("inline component spec without a name", train("objective.block_sizes={draft: 4}")),
    (
        "inline spec and block_size_options both",
        train("objective.block_sizes={name: fixed, size: 4}", "objective.block_size_options={size: 4}"),
    ),
    ("unknown block-size option", train("objective.block_sizes={name: fixed, size: 4, width: 2}")),
    ("unknown lr_schedule option", train("optim.lr_schedule_options={floor: 0.1}")),
    ("plugins not a list", train("plugins=geometric.py")),
    ("plugin file missing", train("plugins=[/nonexistent/plugin.py]")),
    ("model.init a preset name", train("model.init=micro")),
    ("block_size_draw=row", train("objective.block_size_draw=row")),
    ("unknown noise schedule", train("objective.schedule=quadratic")),
    ("unknown model preset", train("model.preset=giant")),
    ("data.length > model_length", train("data.length=4096")),
    ("tokenizer that does not fit the model", train("data.tokenizer=gpt2")),
    ("corpus path missing", train("data.corpus_options={paths: [/nonexistent/x.txt]}")),
    ("validation_fraction=1", train("data.validation_fraction=1.0")),
    ("chunk_format=padded", train("data.chunk_format=padded")),
    ("override without '='", train("steps")),
    ("override into a scalar", train("steps.x=1")),
    ("config file missing", lambda tmp: cli(["train", "--config", str(tmp / "nope.yaml")])),
    ("config file is a list", config_file("- 1\n- 2\n")),
    ("config file is invalid YAML", config_file("steps: [1,\n")),
    ("config section not a mapping", config_file("optim: fast\n")),
    ("--resume of a path with no checkpoint", lambda tmp: cli(["train", "--resume", str(tmp)])),
    ("model.init with model.options", train("model.init=/nonexistent", "model.options={dropout: 0.0}")),
    ("model.init directory missing", train("model.init=/nonexistent/ckpt")),
    ("eval_batches larger than the validation split", train("eval_every=1", "eval_batches=1000")),
    ("out_dir already holds a run (no --resume/--overwrite)", twice()),
    ("out_dir already holds a run, --overwrite", twice("--overwrite")),
    ("second run while the out_dir is locked", locked),
    ("--resume a copy into an out_dir holding another run", copied_into_other_run),
    ("non-finite loss (NaN logits) at step 1", nan_loss),
]
