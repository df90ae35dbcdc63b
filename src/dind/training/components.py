"""Component specs: the one way a training config names a pluggable part (a registry name plus the
keyword options its factory is called with), and the one place such a name becomes an object.

YAML spellings of a spec, all read as the same ``ComponentSpec``::

    block_sizes: {name: bimodal, draft: 4, global_size: 1024}   # canonical: what to_dict writes
    corpus: {name: huggingface, options: {name: Skylion007/openwebtext}}
                        # options under ``options:``: how to_dict writes one called name or options
    schedule: loglinear                                          # a bare name: no options
    block_sizes: "bimodal:4,1024,0.1"                            # a text form, where the field has one

``spec_field(REGISTRY, key=...)`` declares a config field holding a spec. It reads the spellings
and checks, when the config is made, that the name is registered and that the registered factory
takes every option: errors name the config key; an unknown name lists the known ones, an unknown
option lists the accepted ones. (A name registered by a config's ``plugins`` is known by then:
``TrainConfig.from_dict`` loads them first.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from dind.registry import Registry, RegistryError

RESERVED = ("name", "options")  # keys of the mapping spelling itself
SPEC_KEYS: set[str] = set()  # the config keys declared with spec_field ("objective.block_sizes", ...)
_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def plain(value: Any) -> Any:
    """``value`` as YAML/JSON data (mappings -> dicts, tuples and lists -> lists), so a spec made
    from objects equals the one read back from its YAML."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"options must be a mapping of keyword names to values (got {value!r})")
    bad = [key for key in value if not isinstance(key, str) or not key.isidentifier()]
    if bad:
        raise ValueError(f"options must be keyword names (got {bad!r})")
    return plain(value)


def _name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"name must be a non-empty registry name (got {value!r})")


@attrs.frozen
class ComponentSpec:
    """A registry ``name`` and the keyword ``options`` its factory is called with (plain data)."""

    name: str = attrs.field(validator=_name)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)

    @classmethod
    def parse(cls, value: Any, *, key: str) -> ComponentSpec:
        """A spec from a spec, a bare name or a mapping; ``key`` names the config key in errors."""
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        name = value.get("name") if isinstance(value, Mapping) else None
        if not isinstance(name, str) or not name:
            problem = ": no name" if isinstance(value, Mapping) else ""
            raise ValueError(
                f"{key} must be a registry name or a mapping {{name: <registry name>, **options}} "
                f"(got {plain(value)!r}{problem})"
            )
        inline = {option: item for option, item in value.items() if option not in RESERVED}
        explicit = value.get("options") or {}
        if not isinstance(explicit, Mapping):
            raise ValueError(f"{key}.options must be a mapping (got {explicit!r})")
        both = sorted(set(inline) & set(explicit))
        if both:
            raise ValueError(
                f"{key} gives options {both} both inline and under options (got {plain(value)!r})"
            )
        return cls(name, {**inline, **explicit})

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping: options inline, or under ``options`` when one is called name or
        options (so it cannot be mistaken for the mapping's own keys)."""
        if any(option in RESERVED for option in self.options):
            return {"name": self.name, "options": plain(self.options)}
        return {"name": self.name, **plain(self.options)}


def keyword_parameters(factory: Callable[..., Any]) -> list[str] | None:
    """The names ``factory`` takes as keywords, or None when it takes any (``**kwargs``, or no
    signature to read)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return [name for name, p in parameters.items() if p.kind in _KEYWORD]


def check_spec(
    registry: Registry[Any],
    spec: ComponentSpec,
    *,
    key: str,
    given: Iterable[str] = (),
    accepted: Callable[[Callable[..., Any]], list[str] | None] = keyword_parameters,
) -> Callable[..., Any]:
    """The factory ``spec`` names, after checking that it takes every option (``given``: the
    arguments the builder passes itself, not options); errors name ``key``."""
    try:
        factory = registry.get(spec.name)
    except RegistryError as error:
        raise RegistryError(f"{key}: {error}") from None
    names, given = accepted(factory), set(given)
    if names is not None:
        shown = [name for name in names if name not in given]
        unknown = sorted(set(spec.options) - set(shown))
        if unknown:
            raise ValueError(f"{key} {spec.name!r} does not take options {unknown} (accepted: {shown})")
    return factory


def build_component(registry: Registry[Any], spec: ComponentSpec, *, key: str, **given: Any) -> Any:
    """``registry``'s ``spec.name`` called with the ``given`` arguments and ``spec.options``."""
    return check_spec(registry, spec, key=key, given=given)(**given, **spec.options)


def spec_of(registry: Registry[Any], name: str, component: Any) -> ComponentSpec:
    """The spec that builds ``component`` again: ``name`` and, as options, the component's
    attributes named like its factory's keyword parameters (an attrs class's fields)."""
    names = keyword_parameters(registry.get(name)) or []
    missing = [option for option in names if not hasattr(component, option)]
    if missing:
        raise ValueError(
            f"{name!r} keeps no attributes {missing} to write as options; "
            f"spell it {{name: {name}, **options}}"
        )
    return ComponentSpec(name, {option: getattr(component, option) for option in names})


def spec_field(
    registry: Registry[Any],
    *,
    key: str,
    default: Any,
    given: tuple[str, ...] = (),
    accepted: Callable[[Callable[..., Any]], list[str] | None] = keyword_parameters,
    text: Callable[[str], ComponentSpec] | None = None,
) -> Any:
    """An attrs field holding a ``ComponentSpec`` of ``registry``, read from any spelling above
    (``text``: how to read a "name:args" text form, for components that have one) and checked when
    the config is made. ``key`` is the config key errors name; ``given`` and ``accepted`` as in
    ``check_spec``."""

    def convert(value: Any) -> ComponentSpec:
        if text is not None and isinstance(value, str) and ":" in value:
            return text(value)
        return ComponentSpec.parse(value, key=key)

    def check(instance: Any, attribute: attrs.Attribute, value: ComponentSpec) -> None:
        check_spec(registry, value, key=key, given=given, accepted=accepted)

    SPEC_KEYS.add(key)
    return attrs.field(default=default, converter=convert, validator=check, metadata={"key": key})
