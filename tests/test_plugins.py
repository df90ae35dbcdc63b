"""load_plugin: a .py file or a module name registers its components; missing or failing plugins
raise a PluginError (a UserError) naming the spec; no circular import between remaskers and sampling."""

import subprocess
import sys

import pytest

from dind.errors import UserError
from dind.plugins import PluginError, load_plugin
from dind.registry import Registry

PLUGIN = """
from dind.registry import _INDEX
_INDEX["{kind}"].add("{name}", dict)
"""


def test_a_file_registers_once_even_if_loaded_twice(tmp_path):
    registry = Registry("plugin_test_kind")
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN.format(kind="plugin_test_kind", name="thing"))
    load_plugin(str(path))
    load_plugin(str(path))  # a second registration would raise "already registered"
    assert registry.names() == ("thing",)


def test_a_module_name_is_imported(tmp_path, monkeypatch):
    registry = Registry("plugin_test_module_kind")
    (tmp_path / "plugin_mod_xyz.py").write_text(PLUGIN.format(kind="plugin_test_module_kind", name="m"))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugin("plugin_mod_xyz")
    assert registry.names() == ("m",)


def test_missing_and_failing_plugins_are_user_errors(tmp_path):
    with pytest.raises(PluginError, match=r"plugin file not found: '.*nowhere.py'"):
        load_plugin(str(tmp_path / "nowhere.py"))
    with pytest.raises(PluginError, match=r"plugin module 'no_such_plugin_module' not found"):
        load_plugin("no_such_plugin_module")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UserError, match=r"plugin file '.*broken.py' raised on import: RuntimeError: boom"):
        load_plugin(str(broken))
    with pytest.raises(PluginError, match="plugin must be a module name or a path"):
        load_plugin("")


@pytest.mark.parametrize(
    "first", ["dind.remaskers", "dind.remaskers.posthoc", "dind.sampling", "dind.sampling.plan"]
)
def test_no_circular_import_between_remaskers_and_sampling(first):
    code = f"import {first}; import dind.remaskers, dind.sampling; dind.sampling.StagePlan.parse('L')"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_remaskers_never_import_sampling():
    from pathlib import Path

    import dind.remaskers

    for path in Path(dind.remaskers.__file__).parent.glob("*.py"):
        imports = [
            line for line in path.read_text().splitlines() if line.lstrip().startswith(("import ", "from "))
        ]
        assert not [line for line in imports if "dind.sampling" in line], path
