"""Shipped assets by name: every name resolves to a directory in the package, kinds are kept apart,
a local path of the same name wins, and the names never clash with presets."""

import pytest

from dind.models import PRESETS
from dind.shipped import ASSETS, asset_names, describe, shipped_path


def test_every_asset_is_a_directory_with_a_config_in_the_package():
    for name, asset in ASSETS.items():
        assert (asset.path() / "config.json").is_file(), name
    assert asset_names("model") == ("demo", "tiny-shakespeare")
    assert asset_names("judge") == ("judge-kn-shakespeare", "judge-shakespeare")
    assert ASSETS["demo"].path() == ASSETS["tiny-shakespeare"].path()


def test_asset_names_are_not_preset_names():
    assert not set(ASSETS) & set(PRESETS.names())


def test_describe_lists_each_directory_once_with_its_aliases():
    assert describe("model") == "tiny-shakespeare (= demo)"
    assert describe("judge") == "judge-kn-shakespeare, judge-shakespeare"


def test_a_local_path_of_the_same_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shipped_path("demo", "model", parameter="--model") == ASSETS["demo"].path()
    (tmp_path / "demo").mkdir()
    assert shipped_path("demo", "model", parameter="--model") is None
    assert shipped_path("not-an-asset", "model", parameter="--model") is None


def test_an_asset_of_the_other_kind_names_the_parameter_and_the_assets_of_the_kind():
    with pytest.raises(
        ValueError, match=r"--judge must name a judge \(got 'demo', a shipped model; shipped judges: "
    ):
        shipped_path("demo", "judge", parameter="--judge")
    with pytest.raises(ValueError, match=r"shipped models: tiny-shakespeare \(= demo\)"):
        shipped_path("judge-shakespeare", "model", parameter="path_or_preset")


def test_reports_name_shipped_assets_by_name_and_keep_other_paths(tmp_path):
    from dind.shipped import display_name

    assert display_name(ASSETS["judge-kn-shakespeare"].path()) == "judge-kn-shakespeare"
    assert display_name(str(ASSETS["demo"].path())) == "tiny-shakespeare"
    assert display_name(tmp_path / "judge-shakespeare") == str(tmp_path / "judge-shakespeare")
    assert display_name("runs/t3/bimodal") == "runs/t3/bimodal"
