"""Load a plugin: a module whose import registers components (remaskers, trackers, block-size
distributions, ...) in dind's registries, without packaging it.

``load_plugin("examples/entropy_remasker.py")`` runs a file; ``load_plugin("my_pkg.remaskers")``
imports a module from ``sys.path``. The CLI's ``dind --plugin SPEC`` and a training config's
``plugins: [...]`` call it; installed packages can use entry points instead (docs/extending.md).
Loading the same file twice runs it once, so its registrations do not collide with themselves.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from dind.errors import UserError


class PluginError(UserError, ImportError):
    """A plugin file or module is missing, or raised while it was imported."""


def load_plugin(spec: str) -> None:
    """Import ``spec``: a path to a ``.py`` file (anything with a path separator or ending in
    ``.py``) or a dotted module name. Raises ``PluginError`` naming the spec and the cause."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"plugin must be a module name or a path to a .py file (got {spec!r})")
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        _load_file(Path(spec).expanduser())
    else:
        _import_module(spec)


def _load_file(path: Path) -> None:
    if path.is_dir():
        raise PluginError(
            f"plugin {str(path)[:200]!r} is a directory (a plugin is a .py file or a dotted module name)"
        )
    if not path.is_file():
        where = "" if path.is_absolute() else f", relative to {str(Path.cwd())!r}"
        raise PluginError(
            f"plugin file not found: {str(path)!r}{where} (a plugin is a .py file or a dotted module name)"
        )
    resolved = path.resolve()
    # one module name per file, so loading it again is a no-op like a repeated import
    digest = hashlib.blake2b(str(resolved).encode(), digest_size=6).hexdigest()
    name = f"dind_plugin_{_identifier(resolved.stem)}_{digest}"
    if name in sys.modules:
        return
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"plugin file {str(path)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before exec: attrs, pickling and dataclasses look the module up
    try:
        module_spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as error:  # sys.exit() too: a plugin must never end the command silently
        del sys.modules[name]
        raise PluginError(f"plugin file {str(path)!r} {_cause(error)}") from error


def _import_module(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            raise PluginError(
                f"plugin module {name!r} not found (not importable from sys.path; give a path to a .py file "
                "or install the package)"
            ) from error
        raise PluginError(f"plugin module {name!r} {_cause(error)}") from error
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # sys.exit() too: a plugin must never end the command silently
        raise PluginError(f"plugin module {name!r} {_cause(error)}") from error


def _cause(error: BaseException) -> str:
    """What a plugin did on import, in one bounded line."""
    if isinstance(error, SystemExit):
        code = repr(error.code)
        code = code if len(code) <= 100 else code[:100] + "..."
        return f"called sys.exit({code}) on import (a plugin must only register components)"
    text = " ".join(str(error).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"raised on import: {type(error).__name__}: {text}"


def _identifier(text: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in text)
