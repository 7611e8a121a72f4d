from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.paths import DEFAULT_DATA_DIR, RESULTS_DIR, output_dirs, resolve_data_dir, resolve_profile, runs_dir


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
    assert resolve_profile() == "tiny"
    assert resolve_profile("full") == "full"
    with pytest.raises(ValueError, match="allowed: tiny, cpu, full"):
        resolve_profile("huge")


def test_tiny_writes_apart_from_the_committed_results() -> None:
    assert output_dirs("tiny")[0] == RESULTS_DIR / "tiny" and output_dirs("cpu")[0] == RESULTS_DIR
    assert runs_dir("tiny").parts[-3:] == ("results", "tiny", "runs") and runs_dir("full") == RESULTS_DIR / "runs"
