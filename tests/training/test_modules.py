"""dind.training's modules import each other without cycles, counting the imports inside functions
too (an AST walk, not an import run), and never through the package root ``dind`` or the
``dind.training`` facade: each name comes from the module that defines it."""

import ast
import importlib
import importlib.util
from pathlib import Path

import attrs
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dind" / "training"
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def imported(module: str) -> set[str]:
    """Every dind module ``module`` imports, anywhere in its source."""
    names = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"dind.training.{module}: relative import"
            for alias in node.names:  # "from a import b": module a.b when b is one, else a
                full = f"{node.module}.{alias.name}"
                names.add(full if _is_module(full) else node.module)
    return {name for name in names if name == "dind" or name.startswith("dind.")}


GRAPH = {module: imported(module) for module in MODULES}


@pytest.mark.parametrize("module", MODULES)
def test_no_import_of_the_package_root_or_the_training_facade(module):
    assert "dind" not in GRAPH[module], f"dind.training.{module} imports dind (the package root)"
    assert "dind.training" not in GRAPH[module], f"dind.training.{module} imports the dind.training facade"
    assert not any(name.startswith("dind.cli") for name in GRAPH[module]), "training imports the CLI"


def test_no_import_cycle_inside_dind_training():
    edges = {
        module: {name.removeprefix("dind.training.") for name in GRAPH[module]} & set(MODULES)
        for module in MODULES
    }
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for child in sorted(edges[module]):
            if state.get(child) == "open":
                cycle = path[path.index(child) :] + [child]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child, [*path, child])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_the_walk_sees_function_level_imports():
    source = "def f():\n    from dind.training.setup import build_trainer\n"
    found = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)]
    assert [node.module for node in found] == ["dind.training.setup"]


def _attrs_classes():
    for module in MODULES:
        loaded = importlib.import_module(f"dind.training.{module}")
        for value in vars(loaded).values():
            if isinstance(value, type) and attrs.has(value) and value.__module__ == loaded.__name__:
                yield value


def test_attrs_classes_holding_tensors_or_modules_compare_by_identity():
    # a generated __eq__ would compare tensors elementwise (and raise on their truth value)
    heavy = {
        cls.__name__: cls
        for cls in _attrs_classes()
        if any(
            word in str(field.type) for field in attrs.fields(cls) for word in ("Tensor", "Module", "Batches")
        )
    }
    assert {"NoiseDraw", "LossResult", "SearchResult", "TrainingData", "Validation"} <= set(heavy)
    assert [name for name, cls in heavy.items() if "__eq__" in vars(cls)] == []
