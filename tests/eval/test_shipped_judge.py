"""The shipped byte-level judge loads offline and prefers held-out Shakespeare to shuffled bytes."""

import json
import random
from importlib import resources

from dind.eval.byte_judge import is_byte_judge
from dind.eval.judge import load_judge
from dind.eval.report import evaluate

JUDGE = resources.files("dind") / "assets" / "judge-shakespeare"


def test_the_shipped_judge_is_small_byte_level_and_documented():
    assert (JUDGE / "model.safetensors").stat().st_size <= 10_000_000
    config = json.loads((JUDGE / "config.json").read_text())
    assert config["vocab_size"] == 257 and config["dind_tokenizer"] == "bytes"
    assert config["n_positions"] >= 512
    record = json.loads((JUDGE / "training.json").read_text())
    assert record["recipe"]["validation_file"] == "twelfth_night.txt"
    assert f"{record['validation_nats_per_byte']:.3f} nats/byte" in (JUDGE / "README.md").read_text()


def test_the_shipped_judge_scores_real_text_above_shuffled_bytes():
    judge = load_judge(str(JUDGE), device="cpu")
    assert is_byte_judge(judge) and judge.windowing()[0] == 256
    text = "VIOLA. What country, friends, is this?\nCAPTAIN. This is Illyria, lady.\n" * 2
    shuffled = list(text.encode())
    random.Random(0).shuffle(shuffled)
    real = evaluate(judge, [""], tokens=[[256, *text.encode()]], byte_tokens=True)["gen_ppl"]
    noise = evaluate(judge, [""], tokens=[[256, *shuffled]], byte_tokens=True)["gen_ppl"]
    assert real < 0.6 * noise
