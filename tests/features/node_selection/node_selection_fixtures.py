"""Shared helpers of the node-selection tests: an instance, a fake chat backend, a marker fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.node_selection import AnswerCache, LLMNodeSelector, SelectionStats

SENTENCE = "Obama and his wife Michelle visited Paris on Monday ."
CAPTION = "Two people wave from the steps of a plane, a man in a dark suit and a woman in a red dress."


def make_instance(tokens: str = SENTENCE, head: tuple[str, int, int] = ("Obama", 0, 1),
                  tail: tuple[str, int, int] = ("Michelle", 4, 5)) -> Instance:
    return Instance(index=7, tokens=tuple(tokens.split()), head=Entity(*head), tail=Entity(*tail),
                    img_id="x.jpg", relation="/per/per/couple")


class CountingBackend:
    """A fake chat model: answers from a function of the prompt, counts its calls."""

    name = "fake"
    settings: dict[str, Any] = {"decoding": "greedy"}

    def __init__(self, answer: Any = "1. Paris\n2. his wife", model: str = "fake-1") -> None:
        self.answer = answer
        self.model = model
        self.prompts: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def complete(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer(prompt) if callable(self.answer) else self.answer


class MarkerFallback:
    """A fallback selector whose answers are recognisable."""

    name = "marker"

    def __init__(self) -> None:
        self.stats = SelectionStats()

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        return ["FALLBACK-TEXT"]

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        return ["FALLBACK-VISUAL"]

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        return ["FALLBACK-OBJECT"]


def make_selector(tmp_path: Path, backend: CountingBackend) -> LLMNodeSelector:
    """An LLM selector over ``backend`` with a fresh cache under ``tmp_path`` and the marker fallback."""
    return LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=MarkerFallback())
