"""Pytest settings for the whole repository: the package tests (``tests/``) and nbval over ``notebooks/``."""

from __future__ import annotations

from typing import Any

NBVAL_OUTPUT_TIMEOUT_S = 120
"""Seconds nbval waits for each output message of a cell after the cell has run."""


def pytest_collection_modifyitems(items: list[Any]) -> None:
    # nbval hard-codes 5 s (computationalmodelling/nbval#136, #231): the progress-bar widgets of a
    # training cell can take longer to drain, which failed a CI run although the cell had succeeded.
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
