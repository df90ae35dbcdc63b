import pytest

from dind.cli import all_registries
from dind.registry import Registry, RegistryError


def test_register_build_names():
    reg = Registry("test_things", index=False)

    @reg.register("b")
    def make_b(x=1):
        return ("b", x)

    reg.add("a", lambda: "a")
    assert reg.names() == ("a", "b")
    assert reg.build("b", x=3) == ("b", 3)
    assert "a" in reg and "c" not in reg


def test_duplicate_name_raises():
    reg = Registry("test_dup", index=False)
    reg.add("x", object)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("x", object)


def test_unknown_name_lists_known_names():
    reg = Registry("test_unknown", index=False)
    reg.add("alpha", object)
    reg.add("beta", object)
    with pytest.raises(RegistryError, match=r"unknown test_unknown 'gamma'; known names: alpha, beta"):
        reg.get("gamma")


def test_duplicate_kind_raises():
    Registry("test_kind_once")
    with pytest.raises(RegistryError, match="already exists"):
        Registry("test_kind_once")


def test_entry_points_are_loaded(monkeypatch):
    class FakeEntryPoint:
        name = "plugin"

        def load(self):
            return lambda: "from plugin"

    import dind.registry as registry_module

    monkeypatch.setattr(
        registry_module.metadata, "entry_points", lambda group: [FakeEntryPoint()] if group == "g" else []
    )
    reg = Registry("test_ep", entry_point_group="g", index=False)
    assert reg.names() == ("plugin",)
    assert reg.build("plugin") == "from plugin"


def test_all_registries_found():
    kinds = all_registries()
    for kind in ("schedules", "time_samplers", "partitioners"):
        assert kind in kinds and kinds[kind].names()


def test_a_plugin_that_registers_itself_and_declares_an_entry_point_loads_once(monkeypatch):
    import dind.registry as registry_module

    reg = Registry("test_ep_self", entry_point_group="g_self", index=False)

    def component():
        return "plugin"

    class SelfRegisteringEntryPoint:
        name = "plugin"

        def load(self):
            if "plugin" not in reg._entries:  # importing the plugin module runs its decorator
                reg.add("plugin", component)
            return component

    monkeypatch.setattr(
        registry_module.metadata,
        "entry_points",
        lambda group: [SelfRegisteringEntryPoint()] if group == "g_self" else [],
    )
    assert reg.names() == ("plugin",) and reg.build("plugin") == "plugin"


def test_a_failing_plugin_fails_every_query_not_just_the_first(monkeypatch):
    import dind.registry as registry_module

    class BrokenEntryPoint:
        name = "broken"

        def load(self):
            raise ImportError("plugin module is broken")

    monkeypatch.setattr(
        registry_module.metadata,
        "entry_points",
        lambda group: [BrokenEntryPoint()] if group == "g_bad" else [],
    )
    reg = Registry("test_ep_bad", entry_point_group="g_bad", index=False)
    for _ in range(2):
        with pytest.raises(ImportError, match="broken"):
            reg.names()
