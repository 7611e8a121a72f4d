from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmhan_lib.io import atomic_write_json, atomic_write_text, provenance


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.txt"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object.__new__(type("X", (), {"__str__": None}))})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_provenance_has_versions_and_config() -> None:
    record = provenance({"seed": 3})
    assert record["config"] == {"seed": 3}
    assert record["packages"]["torch"] != "not installed"
    assert len(record["git_revision"]) >= 7
