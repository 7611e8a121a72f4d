"""The LLM selector (:class:`LLMNodeSelector`) and the :class:`ChatBackend` protocol it sends prompts to.

The paper's prompts go to the backend; answers are cached (:class:`AnswerCache`), parsed and
checked (:mod:`~vmhan_lib.features.node_selection.parsing`); an answer that yields nothing usable,
or a backend error, falls back to the embedding ranker, logged and counted in
:class:`SelectionStats`.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from vmhan_lib.data.mnre import Instance
from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.embedding import EmbeddingRankSelector
from vmhan_lib.features.node_selection.parsing import (MAX_PHRASE_WORDS, MAX_SPAN_TOKENS, clean_phrases,
                                                       match_candidates, match_text_spans, parse_answer_items)
from vmhan_lib.features.node_selection.prompts import NodePrompt, object_prompt, text_node_prompt, visual_node_prompt
from vmhan_lib.features.node_selection.protocol import BackendError, ChatBackend, NodeSelector, SelectionStats

logger = logging.getLogger(__name__)

LOGGED_FALLBACKS = 10


class LLMNodeSelector:
    """The paper's prompts sent to a chat backend, answers parsed, cached, and checked.

    Args:
        backend: the chat model.
        cache: the on-disk answer cache (default: ``.cache/llm/answers.jsonl`` in the repository).
        fallback: selector used when an answer yields nothing usable or the backend fails
            (default: an :class:`EmbeddingRankSelector`, built on first use).
        max_span_tokens: longest text-node span accepted, in tokens.
        max_phrase_words: longest visual-node phrase accepted, in words.
    """

    def __init__(self, backend: ChatBackend, cache: AnswerCache | None = None, fallback: NodeSelector | None = None,
                 max_span_tokens: int = MAX_SPAN_TOKENS, max_phrase_words: int = MAX_PHRASE_WORDS) -> None:
        self.backend = backend
        self.cache = cache if cache is not None else AnswerCache()
        self._fallback = fallback
        self.max_span_tokens = max_span_tokens
        self.max_phrase_words = max_phrase_words
        self.name = f"llm:{backend.name}:{backend.model}"
        self.stats = SelectionStats()

    @property
    def fallback(self) -> NodeSelector:
        if self._fallback is None:
            self._fallback = EmbeddingRankSelector()
        return self._fallback

    def ask(self, prompt: NodePrompt) -> str | None:
        """The backend's answer to ``prompt`` from the cache or the model; ``None`` if the backend failed."""
        key = AnswerCache.key(self.backend, prompt.text)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        started = time.perf_counter()
        try:
            answer = self.backend.complete(prompt.text)
        except BackendError as err:
            self.stats.backend_errors += 1
            logger.warning("%s: %s", self.name, err)
            return None
        seconds = time.perf_counter() - started
        self.stats.backend_calls += 1
        self.stats.backend_seconds.append(seconds)
        self.cache.put(key, self.backend, prompt.text, answer, seconds)
        return answer

    def _select(self, kind: str, instance: Instance, prompt: NodePrompt | None,
                pick: Callable[[list[str]], list[str]], fall_back: Callable[[], list[str]]) -> list[str]:
        """What ``pick`` keeps of the answer to ``prompt`` (``None``: nothing to ask, no nodes); when
        it keeps nothing, or the backend failed, the fallback's nodes (``fall_back``), counted and
        the first :data:`LOGGED_FALLBACKS` logged."""
        self.stats.selections[kind] += 1
        if prompt is None:
            return []
        answer = self.ask(prompt)
        chosen = pick(parse_answer_items(answer or ""))
        if chosen:
            return chosen
        self.stats.fallbacks[kind] += 1
        excerpt = "<backend error>" if answer is None else answer[:200]
        if len(self.stats.fallback_examples) < LOGGED_FALLBACKS:
            self.stats.fallback_examples.append((kind, instance.index, excerpt))
            logger.warning("%s: no usable %s nodes for instance %d in answer %r; using the embedding ranker",
                           self.name, kind, instance.index, excerpt)
        return fall_back()

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        return self._select("text", instance, text_node_prompt(instance, m) if m else None,
                            lambda items: match_text_spans(items, instance, self.max_span_tokens)[:m],
                            lambda: self.fallback.select_text_nodes(instance, m))

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        prompt = visual_node_prompt(instance, caption, n) if n and caption.strip() else None
        return self._select("visual", instance, prompt,
                            lambda items: clean_phrases(items, self.max_phrase_words)[:n],
                            lambda: self.fallback.select_visual_nodes(instance, caption, n))

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        return self._select("objects", instance, object_prompt(instance, candidates, k) if k and candidates else None,
                            lambda items: match_candidates(items, candidates)[:k],
                            lambda: self.fallback.select_objects(instance, candidates, k))
