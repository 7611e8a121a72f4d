"""One :class:`NodeSelector` protocol for every selector; :class:`SelectionStats` before any selection."""

from __future__ import annotations

from pathlib import Path

from node_selection_fixtures import CountingBackend, MarkerFallback, make_selector

from vmhan_lib.features.node_selection.embedding import EmbeddingRankSelector
from vmhan_lib.features.node_selection.protocol import NodeSelector, SelectionStats


def test_every_selector_is_a_node_selector(tmp_path: Path) -> None:
    assert isinstance(EmbeddingRankSelector(), NodeSelector)  # the embedder loads on first use, not here
    assert isinstance(make_selector(tmp_path, CountingBackend()), NodeSelector)
    assert isinstance(MarkerFallback(), NodeSelector)


def test_empty_stats_have_zero_rates() -> None:
    stats = SelectionStats()
    assert stats.cache_lookups == 0 and stats.cache_hit_rate == 0.0 and stats.mean_seconds_per_call == 0.0
    assert stats.as_dict()["total_fallbacks"] == 0
    assert "0 selections, 0 model calls" in str(stats)
