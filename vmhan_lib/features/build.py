"""MNRE split -> model-ready :class:`~vmhan_lib.features.nodes.InstanceNodes`, through the cache.

Per instance (the paper's Eq. 1-3 node set):

- ``text_features``: head and tail = frozen start-marker states of the text encoder
  (:mod:`vmhan_lib.features.text_encoder`), then the text-LLM nodes = mean encoder states over the
  spans the selector picked (phrases not found in the sentence are dropped and counted);
- ``visual_features``: the image node (caption embedding), the k caption objects most relevant to
  (h, t) (:mod:`vmhan_lib.features.caption_nodes`), then the visual-LLM nodes = sentence
  embeddings of the phrases the selector picked from the caption.

Instances whose image has no caption get ``has_image=False`` and no visual rows; the reasons are
counted in :class:`BuildReport`. Text-LLM and visual-LLM nodes come from any object with the
:class:`NodeSelector` methods (:mod:`vmhan_lib.features.node_selection`); the
default is none. The finished split is cached under a key of everything that shapes it,
selections included, so a rerun loads it without touching a model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from vmhan_lib.data.captions import captions_path, load_captions
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import Instance, load_mnre, split_path
from vmhan_lib.features.cache import FEATURES_CODE_VERSION, FeatureCache
from vmhan_lib.io import files_sha256, key_digest
from vmhan_lib.features.caption_nodes import CHUNKER_VERSION, build_caption_index, rank_objects
from vmhan_lib.features.config import FeatureConfig
from vmhan_lib.features.node_selection import NodeSelector
from vmhan_lib.features.nodes import InstanceNodes, pack_nodes, unpack_nodes
from vmhan_lib.features.text_encoder import MARKER_SCHEME, SentenceEmbedder, cached_text_features, load_frozen_backbone

IMAGE_NODE_NAME = "<image>"


@dataclass
class BuildReport:
    """What happened while building a split, every fallback counted.

    Attributes:
        split: the split.
        n_instances: instances built.
        without_image: ``reason -> count`` of instances with ``has_image=False`` (``no caption
            line``, ``empty caption``): they train without visual nodes.
        n_truncated: sentences cut to the text encoder's max length (entities always kept).
        text_nodes_not_found: selected text spans not found in their sentence (dropped).
        selection_fallbacks: ``prompt -> count`` of LLM selections whose answer gave nothing usable
            (or whose call failed), answered by the embedding ranker instead.
        cache_hits, cache_misses: feature-cache lookups answered from disk / computed.
    """

    split: str
    n_instances: int
    without_image: dict[str, int] = field(default_factory=dict)
    n_truncated: int = 0
    text_nodes_not_found: int = 0
    selection_fallbacks: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fallbacks(self) -> dict[str, int]:
        """Every fallback of the build in words -> its count (only those that happened)."""
        counted = {f"without visual nodes ({reason})": n for reason, n in sorted(self.without_image.items())}
        counted["selected text spans not in their sentence (dropped)"] = self.text_nodes_not_found
        counted.update({f"LLM {prompt} answers unusable (embedding ranker instead)": n
                        for prompt, n in sorted(self.selection_fallbacks.items())})
        return {what: n for what, n in counted.items() if n}


def describe_fallbacks(reports: dict[str, dict[str, Any]]) -> list[str]:
    """One line per split with fallbacks, from stored :meth:`BuildReport.to_dict` reports, e.g.
    ``test: 17 of 200 instances without visual nodes (no caption line)``; ``[]`` when none."""
    lines = []
    for split, stored in reports.items():
        report = BuildReport(**stored)
        counted = report.fallbacks()
        if counted:
            lines.append(f"{split}: " + "; ".join(
                f"{n} of {report.n_instances} instances {what}" if what.startswith("without") else f"{n} {what}"
                for what, n in counted.items()))
    return lines


@dataclass
class BuiltSplit:
    """The nodes of every instance of a split, in file order, and the :class:`BuildReport`."""

    nodes: list[InstanceNodes]
    report: BuildReport


def _selections(
    instances: Sequence[Instance], captions: Sequence[str], selector: NodeSelector | None,
    config: FeatureConfig, show_progress: bool,
) -> tuple[list[list[str]] | None, list[list[str]]]:
    if selector is None:
        return None, [[] for _ in instances]
    text_nodes: list[list[str]] = []
    visual_nodes: list[list[str]] = []
    for instance, caption in tqdm(list(zip(instances, captions)), desc="select LLM nodes", disable=not show_progress):
        text_nodes.append(list(selector.select_text_nodes(instance, config.m_text_nodes))[: config.m_text_nodes]
                          if config.m_text_nodes else [])
        visual_nodes.append(list(selector.select_visual_nodes(instance, caption, config.n_visual_nodes))[: config.n_visual_nodes]
                            if config.n_visual_nodes and caption else [])
    return text_nodes, visual_nodes


SELECTION_CODE_VERSION = "selections-1"
"""Bump when a change to the selectors changes what they select."""
SELECTION_PAYLOAD = "with-fallbacks"
"""What a selections cache entry holds besides the selections (a change re-selects, nothing else)."""


def _cached_selections(
    data_config: DataConfig, split: str, instances: Sequence[Instance], captions: Sequence[str],
    selector: NodeSelector | None, config: FeatureConfig, cache: FeatureCache,
) -> tuple[list[list[str]] | None, list[list[str]], dict[str, int]]:
    """:func:`_selections` through the feature cache, keyed by the selector's name (backend, model),
    m, n, the captioner it reads and the data: a rerun selects nothing again. Also returns the
    selector's fallbacks by prompt while selecting, kept in the entry so that a rerun reports them too."""
    if selector is None:
        return (*_selections(instances, captions, None, config, config.show_progress), {})
    key = {
        "payload": SELECTION_PAYLOAD,
        "selector": getattr(selector, "name", type(selector).__name__),
        "m": config.m_text_nodes,
        "n": config.n_visual_nodes,
        "captioner": config.visual_selection_captioner,
        "data_files": files_sha256([split_path(data_config.path, split),
                                    captions_path(data_config.path, config.visual_selection_captioner, split)]),
        "instances": key_digest({"indices": [i.index for i in instances]}),
        "code": SELECTION_CODE_VERSION,
    }

    def compute() -> dict[str, Any]:
        stats = getattr(selector, "stats", None)
        before = Counter(stats.fallbacks) if stats is not None else Counter()
        text, visual = _selections(instances, captions, selector, config, config.show_progress)
        after = Counter(stats.fallbacks) if stats is not None else Counter()
        return {"text": text, "visual": visual, "fallbacks": dict(after - before)}

    payload = cache.load_or_compute("selections", split, key, compute)
    return payload["text"], payload["visual"], payload["fallbacks"]


FEATURE_SETTINGS_WITHOUT_EFFECT = ("cache_dir", "use_cache", "show_progress", "batch_size", "device")
"""Feature settings that say where or how fast features are computed, not what they hold."""


def feature_key(features: FeatureConfig, text_encoder: str) -> dict[str, Any]:
    """Everything that shapes the node features of a run, known before any is built: the feature
    settings (less :data:`FEATURE_SETTINGS_WITHOUT_EFFECT`), the versions of the code that
    computes them, and ``text_encoder``, the identity of the encoder whose states they hold (for
    stage 2, the digest of the stage-1 run that fine-tuned it). The data files are the run's data
    fingerprint, kept beside it. Run identities store this key (:mod:`vmhan_lib.train.runner`)."""

    def settings(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: settings(v) for k, v in value.items() if k not in FEATURE_SETTINGS_WITHOUT_EFFECT}
        return value

    return {"settings": settings(asdict(features)), "text_encoder": text_encoder,
            "code": {"features": FEATURES_CODE_VERSION, "selections": SELECTION_CODE_VERSION,
                     "chunker": CHUNKER_VERSION, "markers": MARKER_SCHEME}}


def build_split(
    data_config: DataConfig,
    split: str,
    feature_config: FeatureConfig = FeatureConfig(),
    selector: NodeSelector | None = None,
    cache: FeatureCache | None = None,
) -> BuiltSplit:
    """Build the :class:`InstanceNodes` of every instance of ``split`` (first
    ``data_config.max_instances`` when set), with visual nodes from ``data_config.captioners``.

    Args:
        data_config: data directory, instance limit, captioners.
        split: ``train``, ``val`` or ``test``.
        feature_config: text encoder, caption nodes, m/n, cache settings.
        selector: optional LLM node selector (:class:`NodeSelector`); none means no LLM nodes.
        cache: the feature cache; default ``FeatureCache(feature_config.cache_dir or .cache/features)``.
    """
    show = feature_config.show_progress
    data_dir = data_config.path
    cache = cache or FeatureCache(
        **({"root": feature_config.cache_dir} if feature_config.cache_dir else {}), enabled=feature_config.use_cache)
    hits_before, misses_before = cache.hits, cache.misses
    instances = load_mnre(data_dir, split)[: data_config.max_instances]
    selection_table = load_captions(data_dir, feature_config.visual_selection_captioner, split)
    selection_captions = [selection_table.get(i.img_id, "") for i in instances]
    text_selection, visual_selection, selection_fallbacks = _cached_selections(
        data_config, split, instances, selection_captions, selector, feature_config, cache)

    caption_config = feature_config.captions
    key = {
        "text_model": load_frozen_backbone(feature_config.text.model)[2],
        "marker_scheme": MARKER_SCHEME,
        "max_length": feature_config.text.max_length,
        "embedder": load_frozen_backbone(caption_config.embedder)[2],
        "captioners": list(data_config.captioners),
        "k_objects": feature_config.k_objects,
        "max_phrase_words": caption_config.max_phrase_words,
        "max_caption_tokens": caption_config.max_caption_tokens,
        "chunker": CHUNKER_VERSION,
        "data_files": files_sha256(
            [split_path(data_dir, split)]
            + [captions_path(data_dir, c, split) for c in sorted({*data_config.captioners, feature_config.visual_selection_captioner})]
        ),
        "instances": key_digest({"indices": [i.index for i in instances]}),
        "selections": key_digest({"text": text_selection, "visual": visual_selection}),
    }

    def compute() -> dict[str, Any]:
        nodes, report = _compute_nodes(
            data_config, split, feature_config, cache, instances, text_selection, visual_selection)
        return {"nodes": pack_nodes(nodes), "report": report.to_dict()}

    payload = cache.load_or_compute("nodes", split, key, compute)
    report = BuildReport(**{**payload["report"], "selection_fallbacks": selection_fallbacks})
    report.cache_hits, report.cache_misses = cache.hits - hits_before, cache.misses - misses_before
    return BuiltSplit(unpack_nodes(payload["nodes"]), report)


def _compute_nodes(
    data_config: DataConfig, split: str, feature_config: FeatureConfig, cache: FeatureCache,
    instances: Sequence[Instance], text_selection: list[list[str]] | None, visual_selection: list[list[str]],
) -> tuple[list[InstanceNodes], BuildReport]:
    show = feature_config.show_progress
    caption_config = feature_config.captions
    text = cached_text_features(data_config.path, split, instances, feature_config.text, cache, text_selection, show)
    index = build_caption_index(
        data_config.path, split, [i.img_id for i in instances], data_config.captioners, caption_config, cache,
        with_objects=feature_config.k_objects > 0, show_progress=show,
    )
    embedder = SentenceEmbedder(caption_config.embedder, caption_config.max_caption_tokens,
                                caption_config.batch_size, caption_config.device)
    names = list(dict.fromkeys(n for i in instances for n in (i.head.name, i.tail.name)))
    name_embeddings = embedder.embed(names, show_progress=show, desc="embed entity names")
    name_row = {name: row for row, name in enumerate(names)}
    visual_phrases = list(dict.fromkeys(p for phrases in visual_selection for p in phrases))
    visual_embeddings = embedder.embed(visual_phrases, show_progress=show, desc="embed visual-LLM nodes")
    visual_row = {phrase: row for row, phrase in enumerate(visual_phrases)}

    nodes: list[InstanceNodes] = []
    without_image: Counter[str] = Counter()
    not_found = 0
    for position, instance in enumerate(tqdm(instances, desc=f"build {split} nodes", disable=not show)):
        found = text.phrase_found[position] if text_selection is not None else []
        kept_phrases = [p for p, ok in zip(text_selection[position], found) if ok] if text_selection is not None else []
        not_found += len(found) - len(kept_phrases)
        text_features = torch.cat([text.entities[position], text.phrases[position]]) if kept_phrases else text.entities[position]
        row = index.row(instance.img_id)
        if index.missing_reason[row]:
            without_image[index.missing_reason[row]] += 1
            nodes.append(InstanceNodes(
                text_features.clone(), torch.zeros((0, index.image_embeddings.shape[1])),
                [instance.head.name, instance.tail.name, *kept_phrases], [], n_objects=0, has_image=False))
            continue
        chosen = rank_objects(index.object_embeddings[row], name_embeddings[name_row[instance.head.name]],
                              name_embeddings[name_row[instance.tail.name]], feature_config.k_objects)
        llm_phrases = visual_selection[position]
        visual_features = torch.cat([
            index.image_embeddings[row].unsqueeze(0),
            index.object_embeddings[row][chosen],
            visual_embeddings[[visual_row[p] for p in llm_phrases]] if llm_phrases else torch.zeros((0, embedder.dimension)),
        ])
        nodes.append(InstanceNodes(
            text_features.clone(), visual_features,
            [instance.head.name, instance.tail.name, *kept_phrases],
            [IMAGE_NODE_NAME, *(index.object_phrases[row][i] for i in chosen), *llm_phrases],
            n_objects=len(chosen), has_image=True,
        ))
    report = BuildReport(split=split, n_instances=len(instances), without_image=dict(without_image),
                         n_truncated=text.n_truncated, text_nodes_not_found=not_found)
    return nodes, report
