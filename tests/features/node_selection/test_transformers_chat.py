"""The transformers backend with the packaged SmolLM2-135M-Instruct GGUF: loads and answers one prompt."""

from __future__ import annotations

import json
from pathlib import Path

from node_selection_fixtures import MarkerFallback, make_instance

from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.llm import LLMNodeSelector
from vmhan_lib.features.node_selection.transformers_chat import TransformersChatBackend


def test_smollm2_gguf_loads_and_answers_one_prompt(tmp_path: Path) -> None:
    backend = TransformersChatBackend.smollm2(max_new_tokens=24)
    selector = LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())
    chosen = selector.select_objects(make_instance(), ["person", "tie", "airplane"], 2)
    assert selector.stats.backend_calls == 1 and backend.load_seconds > 0
    assert 1 <= len(chosen) <= 2
    (record,) = [json.loads(line) for line in (tmp_path / "llm" / "answers.jsonl").read_text().splitlines()]
    assert record["model"] == "SmolLM2-135M-Instruct-Q4_1" and record["answer"].strip()
