"""The package's factory, :func:`vmhan_lib.features.node_selection.make_node_selector`."""

from __future__ import annotations

import pytest

from vmhan_lib.features.node_selection import make_node_selector


def test_make_node_selector_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="allowed: embedding, smollm2, transformers, openai"):
        make_node_selector("llama")
    with pytest.raises(ValueError, match="needs base_url"):
        make_node_selector("openai", model="m")
