"""Config files and ``a.b=value`` overrides, as plain nested dicts (before any structuring), and
the deprecated spellings they may still use.

Deprecated (read, never written; ``TrainConfig.to_dict`` writes the new spelling):

- the flat options keys ``model.options``, ``data.corpus_options``, ``objective.block_size_options``,
  ``objective.schedule_options``, ``optim.lr_schedule_options``: the options of the component key
  next to them (``model.preset``, ``data.corpus``, ...), whose spec now holds its own options
  (``block_sizes: {name: bimodal, draft: 4}``). In a file, ``block_sizes: bimodal`` with
  ``block_size_options: {draft: 4}`` reads as that spec. An override of a flat key acts on the
  options of the spec as the file has it: ``objective.block_size_options={...}`` replaces them,
  ``objective.block_size_options.draft=8`` sets one, ``"objective.block_size_options={}"`` clears
  them (and is a no-op next to a text form such as ``objective.block_sizes=fixed:4``).
- ``optim.grad_clip``: now the top-level ``grad_clip`` (a Trainer setting like ``steps``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from dind.errors import ConfigError
from dind.training.components import SPEC_KEYS, ComponentSpec

__all__ = ["MOVED_KEYS", "OPTION_ALIASES", "apply_overrides", "fold_deprecated", "load_mapping"]

# (section, flat options key) -> the component key whose options it holds
OPTION_ALIASES: dict[tuple[str, str], str] = {
    ("model", "options"): "preset",
    ("data", "corpus_options"): "corpus",
    ("objective", "block_size_options"): "block_sizes",
    ("objective", "schedule_options"): "schedule",
    ("optim", "lr_schedule_options"): "lr_schedule",
}
# a key's old path -> its path now
MOVED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {("optim", "grad_clip"): ("grad_clip",)}


def load_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or JSON (.json) file as a dict."""
    text = Path(path).read_text()
    try:
        data = json.loads(text) if Path(path).suffix == ".json" else _bounded_yaml(text, path)
    except RecursionError:
        raise ConfigError(
            f"{path}: nesting depth must be <= {MAX_DEPTH} (got deeper: Python's recursion limit)"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config file must hold a mapping at the top level (got {type(data).__name__}: {path})"
        )
    return data


MAX_DEPTH = 64  # a config is a few levels deep; deeper is a mistake or an attack
MAX_NODES = 100_000  # values after alias expansion ("billion laughs" stops here, before any copy)


def _bounded_yaml(text: str, path: str | Path) -> Any:
    """``yaml.safe_load`` of ``text`` after checking the node graph: nesting depth <= MAX_DEPTH and
    at most MAX_NODES values once every alias is expanded (counted without expanding)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        sizes: dict[int, int] = {}
        _expanded_size(node, 1, sizes, path)
    return yaml.safe_load(text)


def _expanded_size(node: Any, depth: int, sizes: dict[int, int], path: str | Path) -> int:
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"{path}: nesting depth must be <= {MAX_DEPTH} (got more, at line {node.start_mark.line + 1})"
        )
    if id(node) in sizes:  # an alias: the same node object again; its expansion counts again
        return sizes[id(node)]
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    size = 1 + sum(_expanded_size(child, depth + 1, sizes, path) for child in children)
    if size > MAX_NODES:
        raise ConfigError(
            f"{path}: at most {MAX_NODES:,} values after expanding YAML aliases (got more than that, "
            f"at line {node.start_mark.line + 1}; aliases (*name) that repeat anchors expand multiply)"
        )
    sizes[id(node)] = size
    return size


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=1e-4", "objective.block_sizes.draft=8"]`` -> a new nested dict; values are
    parsed as YAML (numbers, booleans, null, lists, mappings). Deprecated spellings (above) in
    ``data`` are folded into the new ones first; deprecated keys in overrides act on those."""
    result = fold_deprecated(json.loads(json.dumps(data)))  # a deep copy of plain data
    for override in overrides:
        key, separator, raw = override.partition("=")
        if not separator or not key:
            raise ValueError(f"override must look like key.sub=value (got {override!r})")
        path = _moved(tuple(key.split(".")))
        value = _parse_value(raw)
        section = result.get(path[0])
        component = OPTION_ALIASES.get(path[:2])
        if component is not None and isinstance(section, dict) and component in section:
            where, flat = f"{path[0]}.{component}", ".".join(path[:2])
            section[component] = _set_options(section[component], path[2:], value, where, flat)
        else:
            _open_spec(result, path)
            _set(result, path, value, key)
    return result


def fold_deprecated(
    data: dict[str, Any], default: Callable[[str, str], ComponentSpec] | None = None
) -> dict[str, Any]:
    """``data`` (changed in place) with its deprecated spellings in the new places. A flat options
    key whose component key is absent stays as it is or, given ``default(section, key)`` (that
    component's default spec), sets options of that default."""
    for old, new in MOVED_KEYS.items():
        _move(data, old, new)
    for (name, options_key), component in OPTION_ALIASES.items():
        section = data.get(name)
        if not isinstance(section, dict) or options_key not in section:
            continue
        where, flat = f"{name}.{component}", f"{name}.{options_key}"
        options = section.pop(options_key)
        if component in section:
            section[component] = _merge(section[component], options, where, flat)
        elif default is not None:
            spec = default(name, component)
            merged = {**spec.options, **_mapping(options, flat)}
            section[component] = ComponentSpec(spec.name, merged).to_dict()
        else:
            section[options_key] = options
    return data


def _move(data: dict[str, Any], old: tuple[str, ...], new: tuple[str, ...]) -> None:
    parent = _node(data, old[:-1])
    if parent is None or old[-1] not in parent:
        return
    value = parent.pop(old[-1])
    target = _node(data, new[:-1], create=True)
    if target is None:
        raise ValueError(f"{'.'.join(new[:-1])} must be a mapping (got {data.get(new[0])!r})")
    if new[-1] in target and target[new[-1]] != value:
        raise ValueError(
            f"{'.'.join(old)} is a deprecated spelling of {'.'.join(new)}: give one of them "
            f"(got {value!r} and {target[new[-1]]!r})"
        )
    target[new[-1]] = value


def _open_spec(data: dict[str, Any], path: tuple[str, ...]) -> None:
    """A component given by its bare name, about to get an option (``optim.lr_schedule.min_ratio=0.2``
    on ``lr_schedule: cosine``), becomes the mapping ``{name: cosine}``."""
    for depth in range(1, len(path)):
        parent = _node(data, path[: depth - 1])
        value = None if parent is None else parent.get(path[depth - 1])
        if ".".join(path[:depth]) in SPEC_KEYS and isinstance(value, str) and ":" not in value:
            parent[path[depth - 1]] = {"name": value}  # type: ignore[index]


def _merge(spec: Any, options: Any, where: str, flat: str) -> Any:
    """A file's component ``spec`` and its flat ``options``: given in one place or the other."""
    if not options:
        return spec
    if not (isinstance(spec, str) and ":" in spec) and ComponentSpec.parse(spec, key=where).options:
        raise ValueError(
            f"{where} gives its options inline, so {flat} must be empty (got {spec!r} and {options!r})"
        )
    return _set_options(spec, (), options, where, flat)


def _set_options(spec: Any, path: tuple[str, ...], value: Any, where: str, flat: str) -> Any:
    """``spec`` (any spelling) with its options replaced by ``value`` (``path`` empty) or with the
    option at ``path`` set to it, in the canonical spelling."""
    if isinstance(spec, str) and ":" in spec:  # a text form holds its options itself
        if not path and not value:
            return spec
        given = {".".join(path): value} if path else value
        raise ValueError(f"{flat} must be empty when {where} is in text form (got {spec!r} with {given!r})")
    current = ComponentSpec.parse(spec, key=where)
    if path:
        options = json.loads(json.dumps(dict(current.options)))
        _set(options, path, value, ".".join((flat, *path)))
    else:
        options = _mapping(value, flat)
    return ComponentSpec(current.name, options).to_dict()


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a mapping of options (got {value!r})")
    return dict(value)


def _moved(path: tuple[str, ...]) -> tuple[str, ...]:
    for old, new in MOVED_KEYS.items():
        if path[: len(old)] == old:
            return new + path[len(old) :]
    return path


def _node(data: dict[str, Any], path: tuple[str, ...], *, create: bool = False) -> dict[str, Any] | None:
    node = data
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            if not create or child is not None:
                return None
            child = node[part] = {}
        node = child
    return node


def _set(data: dict[str, Any], path: Sequence[str], value: Any, key: str) -> None:
    *parents, leaf = path
    node = data
    for parent in parents:
        child = node.setdefault(parent, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {key!r}: {parent!r} is not a section (got {child!r})")
        node = child
    node[leaf] = value


def _parse_value(raw: str) -> Any:
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)  # "1e-4": YAML 1.1 wants a dot in floats
        except ValueError:
            return value
    return value
