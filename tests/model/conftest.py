"""Fixtures of the model tests; instance builders live in ``tests/factories.py``.

The model tests run on tiny tensors, where intra-op threading only costs (tens of times slower
on a loaded 2-core machine), so they run single-threaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
