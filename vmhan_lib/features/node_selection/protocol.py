"""The node-selector interface: :class:`NodeSelector`, its :class:`SelectionStats`, :class:`BackendError`.

:class:`NodeSelector` is the one protocol every selector of this package follows and that the
feature builder (:mod:`vmhan_lib.features.build`) and the selection report
(:mod:`vmhan_lib.analysis.selection_report`) program against.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from vmhan_lib.data.mnre import Instance


class BackendError(RuntimeError):
    """A chat backend could not produce an answer (unreachable server, HTTP error, bad response)."""


@runtime_checkable
class NodeSelector(Protocol):
    """Chooses the LLM-enhancement nodes of one instance (paper section 4.1).

    The feature builder calls only :meth:`select_text_nodes` and :meth:`select_visual_nodes` (and
    reads ``name``, when there is one, into its cache key); the LLM selector asks its fallback for
    :meth:`select_objects` too, and the selection report reads ``name`` and ``stats``.
    """

    name: str
    stats: "SelectionStats"

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        """Up to ``m`` spans of the sentence (not the entities) most relevant to the pair."""
        ...

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        """Up to ``n`` entities/actions of the image (read from its ``caption``) relevant to the pair."""
        ...

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        """Up to ``k`` of the detected objects ``candidates`` most relevant to the pair."""
        ...


@dataclass
class SelectionStats:
    """Counters a notebook can print: model calls and their time, cache hit rate, fallbacks.

    Attributes:
        selections: selections asked of the selector, by kind (text, visual, objects).
        backend_calls: model calls made (cache misses that reached the model).
        backend_seconds: seconds spent in those calls, one entry per call.
        cache_hits: answers served from the on-disk cache.
        backend_errors: model calls that failed (each one also counted as a fallback).
        fallbacks: selections answered by the embedding ranker instead, by kind.
        fallback_examples: ``(kind, instance index, answer excerpt)`` of the first fallbacks.
    """

    selections: Counter = field(default_factory=Counter)
    backend_calls: int = 0
    backend_seconds: list[float] = field(default_factory=list)
    cache_hits: int = 0
    backend_errors: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    fallback_examples: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def cache_lookups(self) -> int:
        return self.cache_hits + self.backend_calls + self.backend_errors

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else 0.0

    @property
    def mean_seconds_per_call(self) -> float:
        return sum(self.backend_seconds) / len(self.backend_seconds) if self.backend_seconds else 0.0

    @property
    def total_fallbacks(self) -> int:
        return sum(self.fallbacks.values())

    def as_dict(self) -> dict[str, Any]:
        return {"selections": dict(self.selections), "backend_calls": self.backend_calls,
                "backend_seconds_total": round(sum(self.backend_seconds), 4),
                "mean_seconds_per_call": round(self.mean_seconds_per_call, 4), "cache_hits": self.cache_hits,
                "cache_hit_rate": round(self.cache_hit_rate, 4), "backend_errors": self.backend_errors,
                "fallbacks": dict(self.fallbacks), "total_fallbacks": self.total_fallbacks}

    def __str__(self) -> str:
        return (
            f"{sum(self.selections.values())} selections, {self.backend_calls} model calls "
            f"({self.mean_seconds_per_call:.2f} s/call), cache hit rate {self.cache_hit_rate:.1%} "
            f"({self.cache_hits}/{self.cache_lookups}), {self.total_fallbacks} fallbacks to the embedding "
            f"ranker {dict(self.fallbacks)}, {self.backend_errors} backend errors"
        )


@dataclass
class PromptSelectors:
    """The selector of each of the paper's three prompts (``None``: that prompt is not asked).

    Attributes:
        text: text nodes (m spans of the sentence); ``None``: no text-LLM nodes.
        visual: visual nodes (n entities/actions of the image, read from its caption); ``None``: none.
        objects: the k objects among the candidates (caption-named or detected); ``None``: the
            default ranking (embedding relevance for caption objects, confidence for detections).
    """

    text: NodeSelector | None = None
    visual: NodeSelector | None = None
    objects: NodeSelector | None = None

    @classmethod
    def of(cls, selector: "NodeSelector | PromptSelectors | None") -> "PromptSelectors":
        """``selector`` as the selectors of the three prompts: one selector serves the text and the
        visual prompt (the objects keep the default ranking), as before prompts had their own."""
        if isinstance(selector, PromptSelectors):
            return selector
        return cls(selector, selector, None)


class ChatBackend(Protocol):
    """A chat model answering one user message. ``name``, ``model`` and ``settings`` key the cache."""

    name: str
    model: str
    settings: dict[str, Any]

    def complete(self, prompt: str) -> str:
        """The model's answer to ``prompt``; raises :class:`BackendError` when there is none."""
        ...
