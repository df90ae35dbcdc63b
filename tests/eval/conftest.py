"""A tiny random GPT-2 judge saved to disk, loadable offline like a real GPT-2 Large directory."""

import json
from importlib import resources

import pytest
import torch


def _gpt2_tokenizer():
    import transformers
    from transformers import GPT2TokenizerFast

    assets = resources.files("dind") / "assets" / "gpt2"
    if int(transformers.__version__.split(".")[0]) >= 5:
        vocab = json.loads((assets / "encoder.json").read_text(encoding="utf-8"))
        lines = (assets / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
        merges = [tuple(line.split(" ")) for line in lines if line]
        return GPT2TokenizerFast(vocab=vocab, merges=merges)
    return GPT2TokenizerFast(vocab_file=str(assets / "encoder.json"), merges_file=str(assets / "vocab.bpe"))


@pytest.fixture(scope="session")
def judge_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("tiny-judge")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=50257))
    model.save_pretrained(directory)
    _gpt2_tokenizer().save_pretrained(directory)
    return directory


@pytest.fixture(autouse=True)
def _single_thread():
    # the judge here is tiny: a second intra-op thread only adds synchronisation, which costs
    # 10-50x per forward when the cores are busy with other tests
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
