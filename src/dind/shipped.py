"""The assets shipped inside the package, by name: ``dind.load("demo")``, ``--model demo``,
``--judge judge-shakespeare``. ``dind list`` prints them.

| name | kind | what |
| --- | --- | --- |
| ``tiny-shakespeare`` (alias ``demo``) | model | the byte-level demo model of ``dind demo`` |
| ``judge-shakespeare`` | judge | a 1.9M-parameter byte-level GPT-2 |
| ``judge-kn-shakespeare`` | judge | a byte 6-gram Kneser-Ney model |

Rules: a name is looked up here only when no file or directory of that name exists (a local path
always wins, as it does over a preset name); an asset name is never sent to a model hub. A name of
the other kind (``--judge demo``) is an error saying what it is.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import attrs

AssetKind = Literal["model", "judge"]


@attrs.frozen
class Asset:
    """One shipped directory: its ``directory`` under ``dind/assets`` and what it is."""

    kind: AssetKind
    directory: str
    description: str

    def path(self) -> Path:
        return Path(str(resources.files("dind") / "assets" / self.directory))


_DEMO_MODEL = Asset("model", "tiny-shakespeare", "the byte-level demo model (5.5M parameters)")
ASSETS: dict[str, Asset] = {
    "demo": _DEMO_MODEL,
    "tiny-shakespeare": _DEMO_MODEL,
    "judge-shakespeare": Asset("judge", "judge-shakespeare", "byte-level GPT-2 judge (1.9M parameters)"),
    "judge-kn-shakespeare": Asset("judge", "judge-kn-shakespeare", "byte 6-gram Kneser-Ney judge"),
}


def asset_names(kind: AssetKind | None = None) -> tuple[str, ...]:
    """The names of every shipped asset (of ``kind``), sorted."""
    return tuple(sorted(name for name, asset in ASSETS.items() if kind is None or asset.kind == kind))


def describe(kind: AssetKind) -> str:
    """``name (alias, ...)`` for each asset of ``kind``: what ``dind list`` and errors print."""
    by_directory: dict[str, list[str]] = {}
    for name in asset_names(kind):
        by_directory.setdefault(ASSETS[name].directory, []).append(name)
    parts = []
    for directory, names in sorted(by_directory.items()):
        aliases = [name for name in names if name != directory]
        parts.append(f"{directory} (= {', '.join(aliases)})" if aliases else directory)
    return ", ".join(parts)


def shipped_path(name: str, kind: AssetKind, *, parameter: str) -> Path | None:
    """The directory of the shipped asset ``name`` when ``name`` is one and no local path of that
    name exists; None otherwise. An asset of the other kind is a ``ValueError`` naming
    ``parameter`` (``--judge``, ``path_or_preset``, ...) and the assets of ``kind``."""
    asset = ASSETS.get(str(name))
    if asset is None or Path(str(name)).expanduser().exists():
        return None
    if asset.kind != kind:
        raise ValueError(
            f"{parameter} must name a {kind} (got {name!r}, a shipped {asset.kind}; shipped {kind}s: "
            f"{describe(kind)})"
        )
    return asset.path()


def display_name(path: str | Path) -> str:
    """``path`` as a report should record it: a shipped asset's directory by its name (the same on
    every machine), anything else as given."""
    for asset in ASSETS.values():
        if Path(path) == asset.path():
            return asset.directory
    return str(path)
