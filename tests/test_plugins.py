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


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("import sys\nsys.exit(0)\n", r"called sys\.exit\(0\) on import"),
        ("raise SystemExit('x' * 5000)\n", r"called sys\.exit\('xxx"),
        ("class Stop(BaseException):\n    pass\nraise Stop('halt')\n", r"raised on import: Stop: halt"),
    ],
)
def test_a_plugin_that_exits_or_raises_base_exception_is_an_error(tmp_path, body, expected):
    path = tmp_path / "exits.py"
    path.write_text(body)
    with pytest.raises(PluginError, match=expected) as caught:
        load_plugin(str(path))
    assert len(str(caught.value)) < 400
    load_path = tmp_path / "exits_module.py"
    load_path.write_text(body)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(PluginError, match=expected):
            load_plugin("exits_module")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("exits_module", None)


def test_the_command_fails_when_a_plugin_exits(tmp_path, capsys):
    from dind.cli import main

    path = tmp_path / "quits.py"
    path.write_text("import sys\nsys.exit(0)\n")
    assert main(["--plugin", str(path), "list"]) == 1
    assert "called sys.exit(0) on import" in capsys.readouterr().err


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(PluginError, match=r"is a directory"):
        load_plugin(str(tmp_path) + "/")
