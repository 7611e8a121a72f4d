"""Fixtures of the hypergraph tests; the hand-made instances live in ``tests/factories.py``."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
