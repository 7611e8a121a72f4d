"""The embedding ranker (:class:`EmbeddingRankSelector`): candidates ranked by similarity to the pair.

The fast default selector; it needs no text generation. :func:`content_chunks` cuts the
candidate text-node spans out of the sentence.
"""

from __future__ import annotations

from typing import Sequence

import torch

from vmhan_lib.data.mnre import Instance
from vmhan_lib.features.caption_nodes import extract_object_phrases, pair_relevance
from vmhan_lib.features.config import PACKAGED_MINILM
from vmhan_lib.features.node_selection.parsing import STOPWORDS
from vmhan_lib.features.node_selection.protocol import SelectionStats
from vmhan_lib.features.text_encoder import SentenceEmbedder

MAX_CHUNK_TOKENS = 4


def content_chunks(tokens: Sequence[str], blocked: Sequence[tuple[int, int]] = (),
                   max_tokens: int = MAX_CHUNK_TOKENS) -> list[tuple[int, int]]:
    """Noun-ish candidate spans: maximal runs of content tokens, cut at stopwords, punctuation, URLs
    and the ``blocked`` spans, split into pieces of at most ``max_tokens`` tokens."""
    blocked_positions = {i for start, end in blocked for i in range(start, end)}

    def is_content(index: int) -> bool:
        token = tokens[index]
        return (index not in blocked_positions and any(ch.isalnum() for ch in token)
                and token.lower().strip("#@") not in STOPWORDS and not token.lower().startswith(("http", "www.")))

    spans: list[tuple[int, int]] = []
    start = None
    for index in range(len(tokens) + 1):
        if index < len(tokens) and is_content(index):
            start = index if start is None else start
            continue
        if start is not None:
            spans.extend((s, min(s + max_tokens, index)) for s in range(start, index, max_tokens))
            start = None
    return spans


class EmbeddingRankSelector:
    """Ranks candidate spans by similarity to the entity pair; needs no text generation.

    Relevance to the pair is the mean of the cosine similarities to the head-name and tail-name
    embeddings (:func:`~vmhan_lib.features.caption_nodes.pair_relevance`, as for the caption-based
    object nodes). Candidates: for text nodes, chunks of the sentence outside the entities
    (:func:`content_chunks`); for visual nodes, the phrases the caption names
    (:func:`~vmhan_lib.features.caption_nodes.extract_object_phrases`); for objects, the candidates.

    Args:
        embedder: sentence embedder (mean-pooled, L2-normalised), or the name of its model
            (default the packaged all-MiniLM-L6-v2), loaded on first use. Embeddings are memoised
            per text, since one sentence and one caption serve all the entity pairs of a sentence.
        max_phrase_words: longest caption phrase, in words.
        device: torch device of an embedder loaded by name.
    """

    def __init__(self, embedder: SentenceEmbedder | str = PACKAGED_MINILM, max_phrase_words: int = 3,
                 device: str = "cpu") -> None:
        self._embedder = embedder
        self.max_phrase_words = max_phrase_words
        self.device = device
        # the name identifies the selector in cache keys: what ranks, and how phrases are cut
        self.name = f"embedding:{embedder if isinstance(embedder, str) else embedder.identity}:words{max_phrase_words}"
        self.stats = SelectionStats()
        self._memo: dict[str, torch.Tensor] = {}

    @property
    def embedder(self) -> SentenceEmbedder:
        if isinstance(self._embedder, str):
            self._embedder = SentenceEmbedder(self._embedder, max_length=64, device=self.device)
        return self._embedder

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``[len(texts), d]`` unit-norm embeddings, memoised per text."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            self._memo.update(zip(missing, self.embedder.embed(missing)))
        return torch.stack([self._memo[t] for t in texts])

    def rank(self, instance: Instance, candidates: Sequence[str]) -> list[int]:
        """Indices of ``candidates``, most relevant to the pair first (ties: earlier first)."""
        if not candidates:
            return []
        head, tail = self.embed([instance.head.name, instance.tail.name])
        scores = pair_relevance(self.embed(candidates), head, tail)
        return torch.argsort(scores, descending=True, stable=True).tolist()

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        self.stats.selections["text"] += 1
        spans = content_chunks(instance.tokens, (instance.head.span, instance.tail.span))
        texts = list(dict.fromkeys(" ".join(instance.tokens[s:e]) for s, e in spans))
        return [texts[i] for i in self.rank(instance, texts)[:m]]

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        self.stats.selections["visual"] += 1
        phrases = extract_object_phrases(caption, self.max_phrase_words)
        return [phrases[i] for i in self.rank(instance, phrases)[:n]]

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        self.stats.selections["objects"] += 1
        return [candidates[i] for i in self.rank(instance, candidates)[:k]]
