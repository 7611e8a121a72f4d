"""Fixtures of the model tests; instance builders live in ``model_fixtures``."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
