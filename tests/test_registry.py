import pytest

from dind.registry import Registry, RegistryError, all_registries


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
