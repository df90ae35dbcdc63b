"""The import graph of src/dind, built from the AST (imports inside functions included): no cycle,
and no import from a higher layer than the importer's (DESIGN.md, "Layers").

Imports under ``if TYPE_CHECKING:`` are left out: they never run. A module's layer is its
top-level package's (``dind.sampling.plan`` -> sampling)."""

from __future__ import annotations

import ast
from pathlib import Path

import dind

# DESIGN.md's layer order, lowest first; a module may import its own layer and the ones below.
LAYERS: list[set[str]] = [
    {"errors", "validation", "registry", "counter_rng", "textform", "outputs", "locks", "plugins", "shipped"},
    {"attention"},
    {"models", "schedules", "data", "blocks"},
    {"masking", "remaskers"},
    {"sampling"},
    {"eval"},
    {"training"},
    {"cli", "demo", "__main__", "dind"},  # the command line and the lazy package root
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}
SOURCE = Path(dind.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, package: str) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import that runs, relative imports resolved."""
    found: list[tuple[str, list[str], int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            found.append((base, [alias.name for alias in node.names], node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported dind module: line}."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, int] = {}
        for base, names, line in _imported(ast.parse(path.read_text()), package):
            if base != "dind" and not base.startswith("dind."):
                continue
            targets = [f"{base}.{name}" for name in names if f"{base}.{name}" in modules] or [base]
            for target in filter(None, map(resolve, targets)):
                if target != module:
                    edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1] if len(parts) > 1 else "dind"]


def _cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, {})):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_every_module_has_a_layer():
    unknown = sorted({module.split(".")[1] for module in _modules() if "." in module} - set(LAYER))
    assert not unknown, f"add these top-level modules to LAYERS (and DESIGN.md): {unknown}"


def test_no_import_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_upward_import():
    upward = [
        f"{module} (line {line}) imports {target}"
        for module, edges in sorted(import_graph().items())
        for target, line in edges.items()
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_checker_sees_function_level_and_relative_imports():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dind.cli import main\n"
        "def f():\n    from dind.eval import entropy\n"
        "from . import plan\n"
    )
    found = _imported(tree, "dind.sampling")
    assert ("dind.eval", ["entropy"], 5) in found
    assert ("dind.sampling", ["plan"], 6) in found
    assert not any(base == "dind.cli" for base, _, _ in found)
