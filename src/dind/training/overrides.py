"""Config files and ``a.b=value`` overrides, as plain nested dicts (before any structuring)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["apply_overrides", "load_mapping"]


def load_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or JSON (.json) file as a dict."""
    text = Path(path).read_text()
    data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config file must hold a mapping at the top level (got {type(data).__name__}: {path})"
        )
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=1e-4", "objective.block_size_options.draft=8"]`` -> a new nested dict; values
    are parsed as YAML (numbers, booleans, null, lists)."""
    result = json.loads(json.dumps(data))  # a deep copy of plain data
    for override in overrides:
        key, separator, raw = override.partition("=")
        if not separator or not key:
            raise ValueError(f"override must look like key.sub=value (got {override!r})")
        *parents, leaf = key.split(".")
        node = result
        for parent in parents:
            child = node.setdefault(parent, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {key!r}: {parent!r} is not a section (got {child!r})")
            node = child
        node[leaf] = _parse_value(raw)
    return result


def _parse_value(raw: str) -> Any:
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)  # "1e-4": YAML 1.1 wants a dot in floats
        except ValueError:
            return value
    return value
