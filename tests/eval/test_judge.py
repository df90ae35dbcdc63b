"""load_judge: shipped judges by name (never from a hub), a clear error for any other bare name."""

import pytest

from dind.eval.byte_judge import is_byte_judge
from dind.eval.judge import JudgeLoadError, load_judge
from dind.eval.kneser_ney import KneserNeyJudge


@pytest.fixture
def no_hub(monkeypatch):
    import transformers

    def refuse(source, *args, **kwargs):
        if not kwargs.get("local_files_only"):
            raise AssertionError(f"{source!r} went to the hub")
        return original(source, *args, **kwargs)

    original = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def test_shipped_judges_load_by_name_offline(no_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(load_judge("judge-kn-shakespeare"), KneserNeyJudge)
    neural = load_judge("judge-shakespeare", device="cpu")
    assert is_byte_judge(neural) and neural.windowing()[0] == 256


def test_a_model_name_or_an_unknown_bare_name_is_refused_with_the_judges_listed(
    no_hub, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"judge must name a judge \(got 'demo', a shipped model"):
        load_judge("demo")
    with pytest.raises(
        JudgeLoadError, match=r"shipped judge \(judge-kn-shakespeare, judge-shakespeare\).*'gpt2-large'"
    ):
        load_judge("gpt2-large")
