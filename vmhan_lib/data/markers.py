"""Entity-marker inputs: how an MNRE instance's text becomes encoder input, and where its states are read.

Shared by the frozen features (:mod:`vmhan_lib.features.text_encoder`) and the trainable encoder
(:class:`vmhan_lib.model.text_encoder.EntityMarkerEncoder`), so that neither layer imports the other.

Marker scheme: typed *punctuation* markers, the "typed entity marker (punct)" of Zhou & Chen
(2021) without entity types (MNRE gives none), head and tail told apart by their punctuation::

    RT @AFP : # BREAKING  @ * UN * @  says ceasefire agreed to end clashes in  # ^ Libya ^ #  's Tripoli

The representation of the pair is the encoder state of the two *start* markers (the ``@`` before
the head and the ``#`` before the tail), which our first probe measured (61.96 test F1
text-only with all-MiniLM-L6-v2; docs/offline_adaptations.md#measured-probes). Punctuation rather than new special tokens because every
marker is already in the WordPiece vocabulary with a pretrained embedding: frozen features (the
cache path, no fine-tuning) are meaningful, fine-tuning starts from a trained input, and any
BERT-like checkpoint works without resizing its embeddings. Markers are separate *words*
located by word index, so the ``@`` and ``#`` of tweets' mentions and hashtags are never taken
for markers.

Truncation (max length 128, the paper's) never cuts an entity: the marked head and tail spans are
kept (an entity longer than half the budget keeps its start markers, first subwords and end
markers), then the remaining budget is filled with the subwords nearest to them, in sentence order.

Phrases (text-LLM nodes, spans of the sentence) are located in the same input: word-level match on
the MNRE tokens first, then a subword match; their node feature is the mean state over the span
(:func:`span_means`), the entities' the start-marker states (:func:`gather_positions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from vmhan_lib.data.mnre import Instance

if TYPE_CHECKING:  # only for annotations: the tokenizer is handed in, so this module needs no transformers
    from transformers import PreTrainedTokenizerBase

HEAD_MARKERS: tuple[str, str] = ("@", "*")
"""Head entity: ``@ * head * @``."""
TAIL_MARKERS: tuple[str, str] = ("#", "^")
"""Tail entity: ``# ^ tail ^ #``."""


@dataclass(frozen=True)
class EncodedPair:
    """One tokenised (sentence, entity pair).

    Attributes:
        input_ids: subword ids with ``[CLS]``/``[SEP]`` and the markers, at most ``max_length``.
        head_position: index of the head's start marker (``@``) in ``input_ids``.
        tail_position: index of the tail's start marker (``#``) in ``input_ids``.
        phrase_spans: for each requested phrase, its half-open subword span, or ``None`` when the
            phrase is not in the sentence (or was cut by truncation).
        truncated: whether subwords were dropped to fit ``max_length``.
    """

    input_ids: tuple[int, ...]
    head_position: int
    tail_position: int
    phrase_spans: tuple[tuple[int, int] | None, ...] = ()
    truncated: bool = False


@dataclass
class TokenizedBatch:
    """A padded batch of :class:`EncodedPair`.

    Attributes:
        input_ids: ``[B, L]`` long.
        attention_mask: ``[B, L]`` long (1 = real token).
        entity_positions: ``[B, 2]`` long, the head and tail start-marker positions.
        phrase_spans: ``[B, M, 2]`` long half-open spans (0, 0 where absent).
        phrase_mask: ``[B, M]`` bool, which phrase spans are real.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    entity_positions: torch.Tensor
    phrase_spans: torch.Tensor
    phrase_mask: torch.Tensor

    def to(self, device: str | torch.device) -> "TokenizedBatch":
        return TokenizedBatch(*(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.entity_positions, self.phrase_spans, self.phrase_mask)))


@dataclass(frozen=True)
class _MarkedWords:
    """Words with markers inserted; ``origin[i]`` is the MNRE token index of word i (None for a
    marker); ``head``/``tail`` are half-open word spans from the start markers to the end markers."""

    words: list[str]
    origin: list[int | None]
    head: tuple[int, int]
    tail: tuple[int, int]


def _insert_markers(tokens: Sequence[str], head: tuple[int, int], tail: tuple[int, int]) -> _MarkedWords:
    """Insert ``@ * head * @`` and ``# ^ tail ^ #``. Nested or overlapping spans are handled: at
    each boundary closing markers come first (the later-opened span first), and the longer span
    opens outside the shorter (the head outside on a tie)."""
    entities = {"head": (head, HEAD_MARKERS), "tail": (tail, TAIL_MARKERS)}
    words: list[str] = []
    origin: list[int | None] = []
    start_word: dict[str, int] = {}
    end_word: dict[str, int] = {}
    for boundary in range(len(tokens) + 1):
        closing = sorted((r for r, ((_, e), _) in entities.items() if e == boundary),
                         key=lambda r: (-entities[r][0][0], r != "tail"))
        for role in closing:
            outer, inner = entities[role][1]
            words += [inner, outer]
            origin += [None, None]
            end_word[role] = len(words)
        opening = sorted((r for r, ((s, _), _) in entities.items() if s == boundary),
                         key=lambda r: -(entities[r][0][1] - entities[r][0][0]))
        for role in opening:
            outer, inner = entities[role][1]
            start_word[role] = len(words)
            words += [outer, inner]
            origin += [None, None]
        if boundary < len(tokens):
            words.append(tokens[boundary])
            origin.append(boundary)
    return _MarkedWords(words, origin, (start_word["head"], end_word["head"]), (start_word["tail"], end_word["tail"]))


def _find_word_span(tokens: Sequence[str], phrase: str) -> tuple[int, int] | None:
    needle = [w.lower() for w in phrase.split()]
    haystack = [t.lower() for t in tokens]
    for start in range(len(haystack) - len(needle) + 1):
        if needle and haystack[start:start + len(needle)] == needle:
            return (start, start + len(needle))
    return None


def _find_subsequence(sequence: Sequence[int], needle: Sequence[int]) -> tuple[int, int] | None:
    for start in range(len(sequence) - len(needle) + 1):
        if needle and list(sequence[start:start + len(needle)]) == list(needle):
            return (start, start + len(needle))
    return None


class EntityMarkerTokenizer:
    """Tokenises an MNRE instance with typed punctuation markers, keeping both entities under
    ``max_length`` and locating extra phrases (see the module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int = 128) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("EntityMarkerTokenizer needs a fast tokenizer (word_ids); load it with AutoTokenizer")
        if max_length < 16:
            raise ValueError(f"max_length must be >= 16, got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(
        self,
        tokens: Sequence[str],
        head: tuple[int, int],
        tail: tuple[int, int],
        phrases: Sequence[str] = (),
    ) -> EncodedPair:
        """Tokenise one sentence (MNRE word tokens) with half-open word spans of head and tail."""
        marked = _insert_markers(tokens, head, tail)
        encoding = self.tokenizer(marked.words, is_split_into_words=True, add_special_tokens=False)
        ids: list[int] = encoding["input_ids"]
        first_subword: dict[int, int] = {}
        last_subword: dict[int, int] = {}
        for position, word in enumerate(encoding.word_ids()):
            first_subword.setdefault(word, position)
            last_subword[word] = position + 1
        new_word_of = {orig: new for new, orig in enumerate(marked.origin) if orig is not None}

        def subword_span(word_span: tuple[int, int]) -> tuple[int, int]:
            return (first_subword[word_span[0]], last_subword[word_span[1] - 1])

        phrase_spans: list[tuple[int, int] | None] = []
        for phrase in phrases:
            span_words = _find_word_span(tokens, phrase)
            if span_words is not None:
                phrase_spans.append(subword_span((new_word_of[span_words[0]], new_word_of[span_words[1] - 1] + 1)))
            else:
                phrase_ids = self.tokenizer(phrase, add_special_tokens=False)["input_ids"]
                phrase_spans.append(_find_subsequence(ids, phrase_ids))

        head_span, tail_span = subword_span(marked.head), subword_span(marked.tail)
        kept = self._positions_to_keep(len(ids), head_span, tail_span)
        truncated = len(kept) < len(ids)
        new_position = {old: new + 1 for new, old in enumerate(kept)}  # +1 for [CLS]

        def remap(span: tuple[int, int] | None) -> tuple[int, int] | None:
            if span is None or any(p not in new_position for p in range(*span)):
                return None
            return (new_position[span[0]], new_position[span[1] - 1] + 1)

        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        return EncodedPair(
            input_ids=(cls_id, *(ids[p] for p in kept), sep_id),
            head_position=new_position[head_span[0]],
            tail_position=new_position[tail_span[0]],
            phrase_spans=tuple(remap(s) for s in phrase_spans),
            truncated=truncated,
        )

    def _positions_to_keep(self, n_subwords: int, *entity_spans: tuple[int, int]) -> list[int]:
        budget = self.max_length - 2
        if n_subwords <= budget:
            return list(range(n_subwords))
        per_entity = budget // len(entity_spans)
        must_keep: set[int] = set()
        for start, end in entity_spans:
            if end - start <= per_entity:
                must_keep.update(range(start, end))
            else:  # keep the start markers and first subwords, and the two end markers
                must_keep.update(range(start, start + per_entity - 2))
                must_keep.update((end - 2, end - 1))
        anchors = sorted(must_keep)
        others = sorted(
            (p for p in range(n_subwords) if p not in must_keep),
            key=lambda p: (min(abs(p - a) for a in anchors), p),
        )
        return sorted(must_keep | set(others[: max(0, budget - len(must_keep))]))

    def encode_instance(self, instance: Instance, phrases: Sequence[str] = ()) -> EncodedPair:
        return self.encode(instance.tokens, instance.head.span, instance.tail.span, phrases)

    def collate(self, pairs: Sequence[EncodedPair]) -> TokenizedBatch:
        """Pad a list of :class:`EncodedPair` into a :class:`TokenizedBatch`."""
        length = max(len(p.input_ids) for p in pairs)
        n_phrases = max((len(p.phrase_spans) for p in pairs), default=0)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(pairs), length), dtype=torch.long)
        phrase_spans = torch.zeros((len(pairs), n_phrases, 2), dtype=torch.long)
        phrase_mask = torch.zeros((len(pairs), n_phrases), dtype=torch.bool)
        for row, pair in enumerate(pairs):
            input_ids[row, : len(pair.input_ids)] = torch.tensor(pair.input_ids)
            attention_mask[row, : len(pair.input_ids)] = 1
            for column, span in enumerate(pair.phrase_spans):
                if span is not None:
                    phrase_spans[row, column] = torch.tensor(span)
                    phrase_mask[row, column] = True
        positions = torch.tensor([[p.head_position, p.tail_position] for p in pairs], dtype=torch.long)
        return TokenizedBatch(input_ids, attention_mask, positions, phrase_spans, phrase_mask)

    def __call__(
        self, instances: Sequence[Instance], phrases: Sequence[Sequence[str]] | None = None
    ) -> TokenizedBatch:
        """Tokenise and pad instances (with, optionally, each instance's phrases)."""
        if phrases is not None and len(phrases) != len(instances):
            raise ValueError(f"phrases must have one list per instance: {len(phrases)} != {len(instances)}")
        return self.collate([
            self.encode_instance(instance, phrases[i] if phrases is not None else ())
            for i, instance in enumerate(instances)
        ])


def gather_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The states ``[B, P, d]`` of ``hidden`` ``[B, L, d]`` at token ``positions`` ``[B, P]``."""
    index = positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
    return torch.gather(hidden, 1, index)


def span_means(hidden: torch.Tensor, spans: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ``[B, L, d]`` over half-open ``spans`` ``[B, M, 2]``; zeros where ``mask`` is False."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    inside = (positions >= spans[..., :1]) & (positions < spans[..., 1:2]) & mask.unsqueeze(-1)  # [B, M, L]
    weights = inside.to(hidden.dtype)
    counts = weights.sum(-1, keepdim=True).clamp(min=1.0)
    return torch.bmm(weights, hidden) / counts
