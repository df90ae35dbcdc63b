from pathlib import Path

import pytest
import torch

from dind import models

SHAKESPEARE = Path(__file__).resolve().parents[2] / "data" / "shakespeare"
# a small slice of the corpus (~25 KB): two short poems
SMALL_CORPUS = [str(SHAKESPEARE / "lovers_complaint.txt"), str(SHAKESPEARE / "passionate_pilgrim.txt")]


@pytest.fixture(scope="module")
def micro():
    torch.manual_seed(0)
    return models.build("micro", init="random").eval()


def _random_tokens(model, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    ids = torch.randint(0, model.vocab_size - 1, (batch, length), generator=generator)
    return ids + (ids >= model.mask_id).long()


@pytest.fixture
def random_tokens():
    """``random_tokens(model, batch, length, generator)``: ids of the model's vocabulary, never MASK."""
    return _random_tokens


@pytest.fixture
def small_corpus():
    return list(SMALL_CORPUS)


def _tokenizer_for(model) -> str:
    from dind.data import TOKENIZERS

    for name in TOKENIZERS.names():
        tokenizer = TOKENIZERS.build(name)
        if tokenizer.model_vocab_size == model.vocab_size and tokenizer.mask_id == model.mask_id:
            return name
    raise LookupError(f"no tokenizer fits a vocabulary of {model.vocab_size}")


@pytest.fixture
def make_config(tmp_path, micro):
    """``make_config(*overrides)``: a fast TrainConfig (micro model, length 32, small corpus slice)."""
    from dind.training import TrainConfig, apply_overrides

    paths = "[" + ", ".join(SMALL_CORPUS) + "]"

    def build(*overrides: str) -> TrainConfig:
        base = [
            "model.preset=micro",
            f"data.tokenizer={_tokenizer_for(micro)}",
            "data.length=32",
            f'data.corpus_options={{paths: {paths}, document_delimiter: "\\n\\n"}}',
            "data.validation_fraction=0.2",
            f"data.cache_dir={tmp_path / 'cache'}",
            "objective.block_sizes=bimodal:4,32,0.25",
            "steps=4",
            "batch_size=4",
            "optim.warmup_steps=2",
            "optim.lr=1e-3",
            "log_every=1",
            "eval_every=2",
            "eval_batches=2",
            "save_every=2",
            "progress=false",
            f"out_dir={tmp_path / 'run'}",
        ]
        return TrainConfig.from_dict(apply_overrides({}, [*base, *overrides]))

    return build
