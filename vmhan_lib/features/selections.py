"""The prompts' choices for a split, through the feature cache, so that a rerun asks no selector again.

- :func:`split_selections`: the text prompt's spans and the visual prompt's phrases of every
  instance (the visual prompt reads the captions of ``features.visual_selection_captioner``),
  cached under the selectors' names (backend, model), m, n, that captioner and the data; the
  selectors' fallbacks counted while selecting are kept in the entry, so a rerun reports them too.
- :func:`cached_object_selections`: the object prompt's k names among each instance's candidates
  (caption-named objects, detected objects; MORE: the annotated ones other than the tail), per
  candidate source, cached under the selector's name, k, the candidates' key and the instances.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from tqdm.auto import tqdm

from vmhan_lib.data.captions import load_captions
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import Instance
from vmhan_lib.data.splits import split_file
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.caption_nodes import CaptionIndex
from vmhan_lib.features.config import MAX_PHRASE_WORDS, FeatureConfig
from vmhan_lib.features.image_nodes import ImageIndex
from vmhan_lib.features.node_selection import NodeSelector, PromptSelectors
from vmhan_lib.features.visual_nodes import caption_files, uses_captions, visual_indexes
from vmhan_lib.identity import CODE_VERSIONS, digest, files_sha256

Selections = tuple[list[list[str]] | None, list[list[str]], dict[str, int]]
"""Text-LLM spans of every instance (``None`` without a text selector), visual-LLM phrases of every
instance, and the selectors' fallbacks by prompt."""


def selector_name(selector: NodeSelector | None) -> str | None:
    """The name a selector's choices are cached under (``None`` for no selector)."""
    return None if selector is None else getattr(selector, "name", type(selector).__name__)


def _selections(
    instances: Sequence[Instance], captions: Sequence[str], selectors: PromptSelectors,
    config: FeatureConfig, show_progress: bool,
) -> tuple[list[list[str]] | None, list[list[str]]]:
    """Text-LLM spans (``None`` without a text selector) and visual-LLM phrases of every instance."""
    text_nodes: list[list[str]] | None = [] if selectors.text is not None else None
    visual_nodes: list[list[str]] = []
    if selectors.text is None and selectors.visual is None:
        return None, [[] for _ in instances]
    for instance, caption in tqdm(list(zip(instances, captions)), desc="select LLM nodes", disable=not show_progress):
        if text_nodes is not None:
            text_nodes.append(list(selectors.text.select_text_nodes(instance, config.m_text_nodes))[: config.m_text_nodes]
                              if config.m_text_nodes else [])
        visual_nodes.append(list(selectors.visual.select_visual_nodes(instance, caption, config.n_visual_nodes))[: config.n_visual_nodes]
                            if selectors.visual is not None and config.n_visual_nodes and caption else [])
    return text_nodes, visual_nodes


def _cached_selections(
    data_config: DataConfig, split: str, instances: Sequence[Instance], captions: Sequence[str],
    selectors: PromptSelectors, config: FeatureConfig, cache: FeatureCache,
) -> Selections:
    """:func:`_selections` through the feature cache, keyed by the selectors' names (backend, model),
    m, n, the captioner they read and the data: a rerun selects nothing again. Also returns the
    selectors' fallbacks by prompt while selecting, kept in the entry so that a rerun reports them too."""
    if selectors.text is None and selectors.visual is None:
        return (*_selections(instances, captions, selectors, config, cache.progress), {})
    text_name, visual_name = selector_name(selectors.text), selector_name(selectors.visual)
    key = {
        "payload": CODE_VERSIONS["selection-payload"],
        "selector": text_name if text_name == visual_name else {"text": text_name, "visual": visual_name},
        "m": config.m_text_nodes,
        "n": config.n_visual_nodes,
        "captioner": config.visual_selection_captioner,
        "data_files": files_sha256([split_file(data_config, split),
                                    *caption_files(data_config, split, [config.visual_selection_captioner])]),
        "instances": digest({"indices": [i.index for i in instances]}),
        "code": CODE_VERSIONS["selections"],
    }

    def compute() -> dict[str, Any]:
        counted = list({id(s): s for s in (selectors.text, selectors.visual) if getattr(s, "stats", None)}.values())

        def fallbacks() -> Counter:
            return sum((Counter(s.stats.fallbacks) for s in counted), Counter())

        before = fallbacks()
        text, visual = _selections(instances, captions, selectors, config, cache.progress)
        return {"text": text, "visual": visual, "fallbacks": dict(fallbacks() - before)}

    payload = cache.load_or_compute("selections", split, key, compute)
    return payload["text"], payload["visual"], payload["fallbacks"]


def split_selections(
    data_config: DataConfig, split: str, instances: Sequence[Instance], selectors: PromptSelectors,
    feature_config: FeatureConfig, cache: FeatureCache,
) -> Selections:
    """:func:`_cached_selections` of ``split``, the visual prompt reading the selection captioner's captions."""
    if data_config.dataset == "more":
        selection_captions = ["" for _ in instances]
    else:
        selection_table = load_captions(data_config.path, feature_config.visual_selection_captioner, split)
        selection_captions = [selection_table.get(i.img_id, "") for i in instances]
    return _cached_selections(data_config, split, instances, selection_captions, selectors, feature_config, cache)


def _object_candidates(instance: Instance, index: CaptionIndex | ImageIndex) -> list[str]:
    """What the object prompt offers for ``instance``: its image's caption-named objects, or the
    distinct names of its detected (MORE: annotated) objects, most confident first."""
    if isinstance(index, CaptionIndex):
        return list(index.object_phrases[index.row(instance.img_id)])
    return list(dict.fromkeys(index.object_names[index.row(instance.img_id)]))


def cached_object_selections(
    data_config: DataConfig, split: str, instances: Sequence[Instance], selector: NodeSelector | None,
    feature_config: FeatureConfig, cache: FeatureCache, visual_key: dict[str, Any],
) -> dict[str, list[list[str]]] | None:
    """The object prompt's choice (k names among the candidates) for every instance and candidate
    source (``captions``, ``images``), cached under the selector's name, k, the candidates' key
    (``visual_key``: :func:`vmhan_lib.features.visual_nodes.visual_key`) and the instances; ``None``
    without an object selector."""
    if selector is None or feature_config.k_objects == 0:
        return None
    captions = {"captioners": list(data_config.captioners), "chunker": CODE_VERSIONS["chunker"],
                "max_phrase_words": MAX_PHRASE_WORDS,
                "caption_files": files_sha256(caption_files(data_config, split, data_config.captioners)),
                } if uses_captions(feature_config) else None  # what the caption-named candidates depend on
    key = {"selector": selector_name(selector), "k": feature_config.k_objects, "visual": visual_key, "captions": captions,
           "data_file": files_sha256([split_file(data_config, split)]),
           "instances": digest({"indices": [i.index for i in instances]}), "code": CODE_VERSIONS["object-selections"]}

    def compute() -> dict[str, Any]:
        chosen: dict[str, list[list[str]]] = {}
        for source, index in zip(("captions", "images"), visual_indexes(data_config, split, instances, feature_config, cache)):
            if index is None:
                continue
            chosen[source] = []
            for instance in tqdm(instances, desc=f"select {source} objects", disable=not cache.progress):
                candidates = _object_candidates(instance, index)
                if isinstance(index, ImageIndex) and instance.tail_object:
                    candidates = [c for c in candidates if c != instance.tail.name]  # MORE: the tail is always kept
                picked = selector.select_objects(instance, candidates, feature_config.k_objects) if candidates else []
                chosen[source].append([p for p in picked if p in candidates][: feature_config.k_objects])
        return chosen

    return cache.load_or_compute("object-selections", split, key, compute)
