"""The on-disk cache of model answers (:class:`AnswerCache`, JSON lines under ``.cache/llm/``)."""

from __future__ import annotations

import json
from pathlib import Path

from vmhan_lib.features.node_selection.protocol import ChatBackend
from vmhan_lib.identity import digest
from vmhan_lib.paths import REPO_ROOT

DEFAULT_LLM_CACHE_DIR = REPO_ROOT / ".cache" / "llm"
CACHE_FILE_NAME = "answers.jsonl"


class AnswerCache:
    """Model answers on disk, one JSON object per line, keyed by backend, model, settings and prompt.

    The file is read once when the cache is created and appended to on every new answer, so
    several runs can share it; an unreadable line (e.g. a run killed mid-write) is skipped.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.path = Path(cache_dir or DEFAULT_LLM_CACHE_DIR) / CACHE_FILE_NAME
        self._answers: dict[str, str] = {}
        self.skipped_lines = 0
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        self._answers[record["key"]] = record["answer"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        self.skipped_lines += 1

    @staticmethod
    def key(backend: "ChatBackend", prompt: str) -> str:
        return digest([backend.name, backend.model, backend.settings, prompt])

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> str | None:
        return self._answers.get(key)

    def put(self, key: str, backend: "ChatBackend", prompt: str, answer: str, seconds: float) -> None:
        self._answers[key] = answer
        record = {"key": key, "backend": backend.name, "model": backend.model, "settings": backend.settings,
                  "prompt": prompt, "answer": answer, "seconds": round(seconds, 4)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
