"""Browser tests: name where their screenshots went at the end of the run (also under ``-q``)."""

from __future__ import annotations

from typing import Any

SCREENSHOTS_PROPERTY = "screenshots"
"""The ``record_property`` name under which a browser test records its screenshot folder."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    folders = {
        value
        for reports in terminalreporter.stats.values() for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", []) if name == SCREENSHOTS_PROPERTY
    }
    for folder in sorted(folders):
        terminalreporter.write_line(f"browser test screenshots: {folder}")
