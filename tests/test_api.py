"""The top-level API: dind.load, dind.generate, dind.StagePlan, lazily; model(tokens) works."""

import subprocess
import sys

import torch

import dind


def test_import_dind_does_not_import_torch():
    code = "import sys, dind; assert 'torch' not in sys.modules, 'torch imported'; print(dind.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_top_level_names_are_the_library_objects():
    from dind.models.loading import load
    from dind.sampling import StagePlan, generate

    assert dind.load is load and dind.generate is generate and dind.StagePlan is StagePlan
    assert {"load", "generate", "StagePlan"} <= set(dir(dind))


def test_load_then_generate_end_to_end():
    model = dind.load("micro")
    tokens = torch.randint(0, 257, (1, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(tokens), model.logits(tokens))
    plan = dind.StagePlan.parse("4 -> 16@0.5")
    result = dind.generate(model, plan, length=16, batch_size=1, seed=0)
    assert result.tokens.shape == (1, 16)


def test_generate_takes_what_to_generate_plus_one_options_object():
    import inspect

    parameters = inspect.signature(dind.generate).parameters
    assert list(parameters) == ["model", "plan", "length", "batch_size", "prompt", "seed", "options"]
    assert parameters["seed"].default == 0 and parameters["options"].default is None
    continue_parameters = inspect.signature(dind.continue_plan).parameters
    assert list(continue_parameters) == ["model", "plan", "draft", "options"]


def test_attrs_classes_holding_tensors_do_not_compare_with_eq():
    # == on tensors is elementwise: a generated __eq__ raises or answers the wrong question
    import inspect

    import attrs

    from dind.cli import all_registries

    all_registries()  # imports every module
    offenders = []
    for name, module in list(sys.modules.items()):
        if name != "dind" and not name.startswith("dind."):
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not attrs.has(cls):
                continue
            holds = [
                f.name for f in attrs.fields(cls) if any(t in str(f.type) for t in ("Tensor", "RowStreams"))
            ]
            if holds and cls.__eq__ is not object.__eq__:
                offenders.append(f"{name}.{cls.__name__} {holds}")
    assert not offenders, "use @attrs.frozen(eq=False) for: " + ", ".join(offenders)
