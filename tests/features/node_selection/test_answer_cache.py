"""The on-disk answer cache: a rerun asks the model nothing, the key holds the model, torn lines are skipped."""

from __future__ import annotations

import json
from pathlib import Path

from node_selection_fixtures import CountingBackend, make_instance, make_selector

from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.prompts import text_node_prompt


def test_rerun_is_served_from_the_disk_cache(tmp_path: Path) -> None:
    instance = make_instance()
    first_backend = CountingBackend()
    first = make_selector(tmp_path, first_backend)
    answer = first.select_text_nodes(instance, 2)
    assert first_backend.calls == 1 and first.stats.cache_hit_rate == 0.0
    assert len(first.stats.backend_seconds) == 1

    rerun_backend = CountingBackend(answer="never used")
    rerun = make_selector(tmp_path, rerun_backend)
    assert rerun.select_text_nodes(instance, 2) == answer
    assert rerun_backend.calls == 0
    assert rerun.stats.cache_hits == 1 and rerun.stats.cache_hit_rate == 1.0
    assert "cache hit rate 100.0%" in str(rerun.stats)

    other_model = CountingBackend(model="fake-2")
    make_selector(tmp_path, other_model).select_text_nodes(instance, 2)
    assert other_model.calls == 1  # the key includes the model
    record = json.loads((tmp_path / "llm" / "answers.jsonl").read_text().splitlines()[0])
    assert record["model"] == "fake-1" and record["prompt"] == text_node_prompt(instance, 2).text


def test_cache_skips_a_torn_line(tmp_path: Path) -> None:
    make_selector(tmp_path, CountingBackend()).select_text_nodes(make_instance(), 2)
    cache_file = tmp_path / "llm" / "answers.jsonl"
    with cache_file.open("a") as handle:
        handle.write('{"key": "abc", "answ')
    cache = AnswerCache(tmp_path / "llm")
    assert len(cache) == 1 and cache.skipped_lines == 1
