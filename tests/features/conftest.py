"""Shared fixtures of the features tests: the real MNRE data (skipped when absent) and a temp cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.paths import resolve_data_dir
from vmhan_lib.features.cache import FeatureCache


@pytest.fixture(scope="session")
def mnre_dir() -> Path:
    data_dir = resolve_data_dir()
    if not (data_dir / "text" / "mnre_test.txt").is_file():
        pytest.skip(f"MNRE data not found in {data_dir} (set VMHAN_DATA)")
    return data_dir


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(root=tmp_path / "features")
