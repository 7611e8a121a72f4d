"""The LLM selector: valid answers kept, unusable answers and backend errors fall back and are counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_selection_fixtures import CAPTION, CountingBackend, make_instance, make_selector

from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.protocol import BackendError, NodeSelector


def test_llm_selector_keeps_valid_answers(tmp_path: Path) -> None:
    selector = make_selector(tmp_path, CountingBackend(lambda p: "1. person\n2. tie" if "Objects" in p else "1. Paris\n2. his wife\n3. Monday"))
    instance = make_instance()
    assert isinstance(selector, NodeSelector)
    assert selector.select_text_nodes(instance, 2) == ["Paris", "his wife"]
    assert selector.select_visual_nodes(instance, CAPTION, 3) == ["Paris", "his wife", "Monday"]
    assert selector.select_objects(instance, ["tie", "person", "car"], 1) == ["person"]
    assert selector.stats.total_fallbacks == 0 and selector.stats.backend_calls == 3
    assert selector.select_text_nodes(instance, 0) == [] and selector.select_objects(instance, [], 3) == []


@pytest.mark.parametrize("answer", ["", "I cannot help with that.", "1. London\n2. Berlin", "[]",
                                    "The top 3 entities and actions that are most relevant for relation extraction are"])
def test_unusable_answers_fall_back_and_are_counted(tmp_path: Path, answer: str) -> None:
    selector = make_selector(tmp_path, CountingBackend(answer))
    instance = make_instance()
    assert selector.select_text_nodes(instance, 3) == ["FALLBACK-TEXT"]
    assert selector.select_objects(instance, ["person", "tie"], 1) == ["FALLBACK-OBJECT"]
    assert selector.stats.fallbacks == {"text": 1, "objects": 1}
    assert selector.stats.fallback_examples[0][:2] == ("text", instance.index)


def test_long_visual_answers_fall_back(tmp_path: Path) -> None:
    selector = make_selector(tmp_path, CountingBackend("1. The man in the dark suit waves to the crowd from the plane."))
    assert selector.select_visual_nodes(make_instance(), CAPTION, 2) == ["FALLBACK-VISUAL"]
    assert selector.stats.fallbacks == {"visual": 1}


def test_backend_errors_fall_back_and_are_not_cached(tmp_path: Path) -> None:
    backend = CountingBackend(BackendError("server down"))
    selector = make_selector(tmp_path, backend)
    assert selector.select_text_nodes(make_instance(), 2) == ["FALLBACK-TEXT"]
    assert selector.select_text_nodes(make_instance(), 2) == ["FALLBACK-TEXT"]
    assert backend.calls == 2 and selector.stats.backend_errors == 2 and selector.stats.fallbacks["text"] == 2
    assert len(AnswerCache(tmp_path / "llm")) == 0
