from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from vmhan_lib.analysis.data_report import PAIRS_FIGURE, RELATION_FIGURE, STATISTICS_FILE, write_data_report
from vmhan_lib.data.config import DataConfig


def test_report_writes_json_with_provenance_and_figures(tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre

    root = write_tiny_mnre(tmp_path / "mnre")
    write_data_report(DataConfig(data_dir=str(root)), tmp_path / "results", tmp_path / "figures")
    saved = json.loads((tmp_path / "results" / STATISTICS_FILE).read_text())
    assert saved["config"]["data"]["data_dir"] == str(root)
    assert {"git_revision", "packages", "created_utc"} <= set(saved)
    assert saved["statistics"]["splits"]["test"]["instances"] == 2
    for name in (RELATION_FIGURE, PAIRS_FIGURE):
        with Image.open(tmp_path / "figures" / name) as image:
            assert image.width > 300 and image.height > 200
