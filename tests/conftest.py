import json
import os
from importlib import resources

import pytest
import torch
from hypothesis import HealthCheck, settings

# CI: derandomised and bounded, so a run is reproducible and fast. Locally: more examples.
settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_addoption(parser):
    parser.addoption(
        "--dind-plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_PATH",
        help="load a dind plugin (a .py file or a module) before collection, so the contract tests, "
        "parametrised over every registered name, check its components (repeatable)",
    )


def pytest_configure(config):
    from dind.plugins import load_plugin

    for spec in config.getoption("--dind-plugin"):
        load_plugin(spec)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


# a tiny random GPT-2 judge saved to disk, loadable offline like a real GPT-2 Large directory
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


@pytest.fixture
def single_thread():
    # the judge here is tiny: a second intra-op thread only adds synchronisation, which costs
    # 10-50x per forward when the cores are busy with other tests
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
