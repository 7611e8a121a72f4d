from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.config import DEFAULT_DATA_DIR, preset, resolve_data_dir, resolve_profile


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VMHAN_DATA", raising=False)
    assert resolve_data_dir() == DEFAULT_DATA_DIR
    monkeypatch.setenv("VMHAN_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_profile_precedence_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMHAN_PROFILE", raising=False)
    assert resolve_profile() == "cpu"
    monkeypatch.setenv("VMHAN_PROFILE", "tiny")
    assert resolve_profile() == "tiny" and preset().data.max_instances == 200
    assert resolve_profile("full") == "full"
    with pytest.raises(ValueError, match="allowed: tiny, cpu, full"):
        resolve_profile("huge")


def test_config_round_trips_to_dict() -> None:
    config = preset("cpu").with_data_dir("/x/mnre")
    assert config.to_dict()["data"]["data_dir"] == "/x/mnre"
    assert config.data.path == Path("/x/mnre")
