"""Named registries of components.

One ``Registry`` per interface (noise schedules, remaskers, attention backends, ...). Entries are
factories: a class or a function that returns a component. Library code passes objects; only the
CLI and config loading turn names into objects through ``build``.

Third-party packages add components through Python entry points: a registry created with
``entry_point_group="dind.remaskers"`` loads every entry point of that group the first time it is
asked for a name; the entry point's name is the registered name and its object the factory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_INDEX: dict[str, Registry[Any]] = {}


class RegistryError(KeyError):
    """Unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """A name -> factory table for one kind of component.

    >>> SHAPES = Registry("shapes_doc_example", index=False)
    >>> @SHAPES.register("square")
    ... class Square:
    ...     def __init__(self, side: float = 1.0):
    ...         self.side = side
    >>> SHAPES.build("square", side=2.0).side
    2.0
    """

    def __init__(self, kind: str, *, entry_point_group: str | None = None, index: bool = True):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Callable[..., T]] = {}
        self._entry_points_loaded = entry_point_group is None
        if index:
            if kind in _INDEX:
                raise RegistryError(f"a registry of kind {kind!r} already exists")
            _INDEX[kind] = self

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@REGISTRY.register("name")`` above a class or factory function."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., T]) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind}: name must be a non-empty string (got {name!r})")
        if name in self._entries:
            raise RegistryError(
                f"{self.kind}: name {name!r} is already registered (to {self._entries[name]!r})"
            )
        self._entries[name] = factory

    def get(self, name: str) -> Callable[..., T]:
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; known names: {known}") from None

    def build(self, name: str, /, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> tuple[str, ...]:
        self._load_entry_points()
        return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self._entries)})"

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True  # set first: loading a plugin may query this registry
        try:
            for entry_point in metadata.entry_points(group=self.entry_point_group):
                loaded = entry_point.load()  # may register itself through the decorator
                if self._entries.get(entry_point.name) is not loaded:
                    self.add(entry_point.name, loaded)  # raises on a different object of that name
        except BaseException:
            self._entry_points_loaded = False  # retry (and raise again) on the next query
            raise


def registry_index() -> dict[str, Registry[Any]]:
    """Every registry created so far (by the modules imported so far), by kind; ``dind list``
    imports every module first (``dind.cli.all_registries``)."""
    return dict(sorted(_INDEX.items()))
