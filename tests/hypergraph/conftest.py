"""Fixtures of the hypergraph tests; the hand-made instances live in ``handmade_hypergraphs``."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
