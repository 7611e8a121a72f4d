"""Parsing a chat model's free-form list answer and matching its items to the instance.

:func:`parse_answer_items` reads JSON or Python lists, numbered or bulleted lines, commas and
quotes; :func:`match_text_spans` keeps the items that are spans of the sentence (not the
entities), :func:`match_candidates` the items naming an offered object, :func:`clean_phrases` the
short phrases with a content word.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterable, Sequence

from vmhan_lib.data.mnre import Instance

MAX_SPAN_TOKENS = 6
MAX_PHRASE_WORDS = 6

STOPWORDS: frozenset[str] = frozenset(
    """a an the and or but nor so yet for of to in on at by with from into onto over under about above
    below between through during before after up down out off again then than too very just only also
    is am are was were be been being have has had having do does did doing will would shall should can
    could may might must i me my mine we us our ours you your yours he him his she her hers it its they
    them their theirs this that these those there here who whom whose which what when where why how
    all any both each few more most other some such no not own same as if because while until
    rt via amp s t ll re ve d m im dont cant wont isnt arent its""".split()
)
_BULLET_PATTERN = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,2}\s*[.):\]]|\d{1,2}\s+-)\s*")
_QUOTE_CHARS = "\"'`“”‘’[]{}()*_ "
_TRAILING_CHARS = ".,;:!?" + _QUOTE_CHARS
_FENCE_PATTERN = re.compile(r"```[a-zA-Z]*")


def _norm(text: str) -> str:
    """Lower-case letters and digits only: the form spans are compared in."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _clean_item(item: str) -> str:
    item = item.replace("**", "").strip().strip(_QUOTE_CHARS)
    return item.rstrip(_TRAILING_CHARS).lstrip(_QUOTE_CHARS).strip()


def _list_items(value: Any) -> list[str] | None:
    """The string items of a parsed JSON/Python list (dicts contribute their first string value)."""
    if not isinstance(value, (list, tuple)):
        return None
    items = []
    for element in value:
        if isinstance(element, dict):
            element = next((v for v in element.values() if isinstance(v, str)), "")
        if isinstance(element, (str, int, float)):
            items.append(str(element))
    return items


def parse_answer_items(answer: str) -> list[str]:
    """The items of a model's free-form list answer, cleaned and de-duplicated, in order.

    Accepted forms: a JSON or Python list anywhere in the answer (code fences allowed); numbered
    or bulleted lines (``1. x``, ``2) y``, ``- z``; a ``name - description`` or ``name: description``
    line keeps the name); one line of comma- or semicolon-separated items. Quotes, brackets,
    markdown emphasis and trailing punctuation are stripped; lines ending in ``:`` (preambles) are
    skipped. Returns ``[]`` when nothing is found.
    """
    text = _FENCE_PATTERN.sub("\n", answer or "").strip()
    for match in re.finditer(r"\[[^\[\]]*\]", text, flags=re.S):
        for loader in (json.loads, ast.literal_eval):
            try:
                parsed = _list_items(loader(match.group(0)))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if parsed is not None:
                return _dedupe(_clean_item(item) for item in parsed)
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().endswith(":")]
    items: list[str] = []
    if len(lines) == 1 and not _BULLET_PATTERN.match(lines[0]):
        items = re.split(r"[,;]", lines[0])
    else:
        for line in lines:
            listed = bool(_BULLET_PATTERN.match(line))
            line = _BULLET_PATTERN.sub("", line).replace("**", "")
            if listed:
                line = re.split(r"\s+[-–—]\s+|:\s+", line, maxsplit=1)[0]
            items.append(line)
    return _dedupe(_clean_item(item) for item in items)


def _dedupe(items: Iterable[str]) -> list[str]:
    """The non-empty ``items``, each kept at its first occurrence up to case."""
    kept: dict[str, str] = {}
    for item in filter(None, items):
        kept.setdefault(item.lower(), item)
    return list(kept.values())


def find_token_span(item: str, tokens: Sequence[str], max_tokens: int = MAX_SPAN_TOKENS) -> tuple[int, int] | None:
    """The first token span ``[start, end)`` whose text equals ``item`` up to case, spacing and punctuation."""
    target = _norm(item)
    if not target:
        return None
    normed = [_norm(token) for token in tokens]
    for start in range(len(tokens)):
        if not normed[start] or not target.startswith(normed[start]):
            continue
        joined = ""
        for end in range(start, min(len(tokens), start + max_tokens)):
            joined += normed[end]
            if joined == target:
                return (start, end + 1)
            if len(joined) >= len(target):
                break
    return None


def match_text_spans(items: Sequence[str], instance: Instance, max_tokens: int = MAX_SPAN_TOKENS) -> list[str]:
    """Items that are spans of the sentence (at most ``max_tokens`` tokens), as the sentence writes them.

    Spans that are an entity or lie inside one are dropped (the entities are nodes already).
    """
    entity_spans = (instance.head.span, instance.tail.span)
    kept: list[str] = []
    for item in items:
        span = find_token_span(item, instance.tokens, max_tokens)
        if span is None or any(s <= span[0] and span[1] <= e for s, e in entity_spans):
            continue
        surface = " ".join(instance.tokens[span[0]:span[1]])
        if surface not in kept:
            kept.append(surface)
    return kept


def match_candidates(items: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """Items naming one of ``candidates`` (by name, or by its 1-based number in the offered list).

    Each candidate position is used once, so a name offered twice can be chosen twice.
    """
    used: set[int] = set()
    chosen: list[str] = []
    for item in items:
        index = next((i for i, c in enumerate(candidates) if i not in used and _norm(c) == _norm(item)), None)
        if index is None and item.strip().isdigit() and 1 <= int(item) <= len(candidates) and int(item) - 1 not in used:
            index = int(item) - 1
        if index is not None:
            used.add(index)
            chosen.append(candidates[index])
    return chosen


def clean_phrases(items: Sequence[str], max_words: int = MAX_PHRASE_WORDS) -> list[str]:
    """Items of at most ``max_words`` words (longer ones are sentences, not nodes) with at least one
    content word (a lone "The" is a cut-off answer, not a node)."""
    return [item for item in items if 0 < len(item.split()) <= max_words
            and any(_norm(word) and word.lower() not in STOPWORDS for word in item.split())]
