"""A split (MNRE or MORE) -> model-ready :class:`~vmhan_lib.features.nodes.InstanceNodes`, through the cache.

Per instance (the paper's Eq. 1-3 node set):

- ``text_features``: head and tail = frozen start-marker states of the text encoder
  (:mod:`vmhan_lib.features.text_encoder`), then the text-LLM nodes = mean encoder states over the
  spans the text-prompt selector picked (phrases not found in the sentence are dropped and counted);
- ``visual_features``, by ``features.visual_source`` (one function per source in
  :mod:`vmhan_lib.features.visual_nodes`):

  - ``captions``: the image node (caption embedding), the k caption objects (most relevant to
    (h, t) by embedding, or the object prompt's choice; :mod:`vmhan_lib.features.caption_nodes`);
  - ``images``: the image node (image-encoder features of the image), the k detected objects (most
    confident, or the object prompt's choice among the detections; MORE: the annotated objects,
    the tail's first) (:mod:`vmhan_lib.features.image_nodes`);
  - ``both``: the image node = image features and caption embedding side by side, the detected
    objects, then the caption objects;

  then the visual-LLM nodes = sentence embeddings of the phrases the visual-prompt selector picked
  from the caption. Rows of different encoders sit in separate column blocks of one width
  (``[image encoder | sentence embedder]``, zeros in the other block), so the model's visual
  projection sees every kind; ``captions`` alone has the sentence block only, as before.

Instances whose image has no caption, or whose image file is missing or unreadable, get
``has_image=False`` and no visual rows; the reasons are counted in :class:`BuildReport` (which
every run record stores under ``build``), with the first failing files named. The selectors of the
three prompts are :class:`PromptSelectors` (:mod:`vmhan_lib.features.node_selection`); the
default is none. Their choices are cached on their own (:mod:`vmhan_lib.features.selections`),
so a rerun asks no selector again. The finished split is cached under a key of everything that shapes it,
selections included, so a rerun loads it without touching a model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import Instance
from vmhan_lib.data.splits import load_split, split_file
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.config import (MAX_CAPTION_TOKENS, MAX_NEW_TOKENS, MAX_PHRASE_WORDS, FeatureConfig,
                                       TextEncoderConfig)
from vmhan_lib.features.node_selection import NodeSelector, PromptSelectors
from vmhan_lib.features.nodes import InstanceNodes, pack_nodes, unpack_nodes
from vmhan_lib.features.selections import cached_object_selections, split_selections
from vmhan_lib.features.text_encoder import (FrozenTextFeatures, cached_text_features, load_frozen_backbone,
                                             placeholder_text_features)
from vmhan_lib.features.visual_nodes import caption_files, uses_captions, visual_key, visual_material, visual_rows
from vmhan_lib.identity import CODE_VERSIONS, digest, files_sha256

IMAGE_NODE_NAME = "<image>"
MAX_NAMED_FAILURES = 20
"""How many failing image files a :class:`BuildReport` names (all are counted)."""


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
        visual_source: where the visual nodes came from (``captions``, ``images``, ``both``).
        n_failed_images: distinct image files missing or unreadable (their instances are in
            ``without_image`` under ``image file not found`` / ``unreadable image``).
        failed_images: ``"<path>: <error>"`` of the first :data:`MAX_NAMED_FAILURES` of them.
        object_selections: object prompts answered (0 without an object selector).
    """

    split: str
    n_instances: int
    without_image: dict[str, int] = field(default_factory=dict)
    n_truncated: int = 0
    text_nodes_not_found: int = 0
    selection_fallbacks: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    visual_source: str = "captions"
    n_failed_images: int = 0
    failed_images: list[str] = field(default_factory=list)
    object_selections: int = 0

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


def feature_key(features: FeatureConfig, text_encoder: str) -> dict[str, Any]:
    """Everything that shapes the node features of a run, known before any is built: the feature
    settings (in the shape run identities have had since they exist: the selector of the text prompt
    as ``selector``, the visual prompt's as ``visual_selector`` where it differs, the constants of the
    chunker and the chat selectors spelled out, the image settings only where images are read), the
    versions of the code that computes them, and ``text_encoder``, the identity of the encoder whose
    states they hold (for stage 2, the digest of the stage-1 run that fine-tuned it). The data files
    are the run's data fingerprint, kept beside it. Run identities store this key
    (:func:`vmhan_lib.train.jobs.job_identity`)."""
    selectors = features.selectors
    effective: dict[str, Any] = {
        "text": asdict(features.text),
        "captions": {"embedder": features.captions.embedder, "max_phrase_words": MAX_PHRASE_WORDS,
                     "max_caption_tokens": MAX_CAPTION_TOKENS},
        "selector": selectors.text, "selector_model": selectors.model, "selector_base_url": selectors.base_url,
        "selector_max_new_tokens": MAX_NEW_TOKENS, "k_objects": features.k_objects,
        "m_text_nodes": features.m_text_nodes, "n_visual_nodes": features.n_visual_nodes,
        "visual_selection_captioner": features.visual_selection_captioner}
    if selectors.visual != selectors.text:
        effective["visual_selector"] = selectors.visual
    if selectors.objects is not None:
        effective["object_selector"] = selectors.objects
    if features.visual_source != "captions":
        effective.update(visual_source=features.visual_source, images=asdict(features.images))
    return {"settings": effective, "text_encoder": text_encoder,
            "code": {"features": CODE_VERSIONS["features"], "selections": CODE_VERSIONS["selections"],
                     "chunker": CODE_VERSIONS["chunker"], "markers": CODE_VERSIONS["markers"]}}


def feature_cache(feature_config: FeatureConfig, device: str = "cpu", progress: bool = True) -> FeatureCache:
    """The feature cache of ``feature_config`` (``cache_dir``, else ``.cache/features``), whose misses
    are computed on ``device`` with ``feature_config.batch_size`` per forward pass."""
    return FeatureCache(**({"root": feature_config.cache_dir} if feature_config.cache_dir else {}),
                        device=device, batch_size=feature_config.batch_size, progress=progress)


def build_split(data_config: DataConfig, split: str, feature_config: FeatureConfig = FeatureConfig(),
                selector: NodeSelector | PromptSelectors | None = None, cache: FeatureCache | None = None,
                instances: Sequence[Instance] | None = None, text_placeholders: bool = False) -> BuiltSplit:
    """Build the :class:`InstanceNodes` of every instance of ``split``
    (:func:`vmhan_lib.data.splits.load_split`: dataset, image filter, ``max_instances``), with visual
    nodes from ``feature_config.visual_source``.

    Args:
        data_config: data directory, dataset, instance limit, captioners, image folder.
        split: ``train``, ``val`` or ``test``.
        feature_config: text encoder, visual source, caption and image nodes, k/m/n, cache settings.
        selector: the selectors of the three prompts (:class:`PromptSelectors`), or one
            :class:`NodeSelector` for the text and visual prompts; none means no LLM nodes.
        cache: the feature cache; default ``FeatureCache(feature_config.cache_dir or .cache/features)``.
        instances: the split as the caller already read it with ``load_split`` (read here if ``None``),
            so one command reads each split file once.
        text_placeholders: zero text-node features of the encoder's width instead of its frozen states
            (``joint`` training computes them with the live encoder; the same text names and report).

    Raises:
        ValueError: MORE with a visual source that reads captions (MORE has no captions here).
    """
    if data_config.dataset == "more" and uses_captions(feature_config):
        raise ValueError("MORE has no image captions here: set features.visual_source=images")
    selectors = PromptSelectors.of(selector)
    cache = cache or feature_cache(feature_config)
    hits_before, misses_before = cache.hits, cache.misses
    instances = load_split(data_config, split) if instances is None else instances
    text_selection, visual_selection, selection_fallbacks = split_selections(
        data_config, split, instances, selectors, feature_config, cache)
    visual = visual_key(data_config, split, instances, feature_config)
    object_selection = cached_object_selections(
        data_config, split, instances, selectors.objects, feature_config, cache, visual)
    key = _nodes_key(data_config, split, feature_config, instances, text_selection, visual_selection,
                     visual, object_selection) | ({"text_features": "placeholders"} if text_placeholders else {})

    def compute() -> dict[str, Any]:
        nodes, report = _compute_nodes(data_config, split, feature_config, cache, instances, text_selection,
                                       visual_selection, object_selection, text_placeholders)
        return {"nodes": pack_nodes(nodes), "report": report.to_dict()}

    payload = cache.load_or_compute("nodes", split, key, compute)
    report = BuildReport(**{**payload["report"], "selection_fallbacks": selection_fallbacks})
    report.cache_hits, report.cache_misses = cache.hits - hits_before, cache.misses - misses_before
    return BuiltSplit(unpack_nodes(payload["nodes"]), report)


def _nodes_key(
    data_config: DataConfig, split: str, feature_config: FeatureConfig, instances: Sequence[Instance],
    text_selection: list[list[str]] | None, visual_selection: list[list[str]], visual: dict[str, Any],
    object_selection: dict[str, list[list[str]]] | None,
) -> dict[str, Any]:
    """The cache key of a split's nodes: the encoders, the text and caption settings, the data files,
    the instances, the (text, visual) LLM selections, and, only where they change anything (so the
    default's entries stay valid), the image material ``visual``, MORE's tail row and the object choice."""
    return {
        "text_model": load_frozen_backbone(feature_config.text.model)[2],
        "marker_scheme": CODE_VERSIONS["markers"],
        "max_length": feature_config.text.max_length,
        "embedder": load_frozen_backbone(feature_config.captions.embedder)[2],
        "captioners": list(data_config.captioners),
        "k_objects": feature_config.k_objects,
        "max_phrase_words": MAX_PHRASE_WORDS,
        "max_caption_tokens": MAX_CAPTION_TOKENS,
        "chunker": CODE_VERSIONS["chunker"],
        "data_files": files_sha256(
            [split_file(data_config, split)]
            + caption_files(data_config, split, [*data_config.captioners, feature_config.visual_selection_captioner])
        ),
        "instances": digest({"indices": [i.index for i in instances]}),
        "selections": digest({"text": text_selection, "visual": visual_selection}),
        **visual,
        **({"tail": "object row 1"} if data_config.dataset == "more" else {}),
        **({"object_selections": digest(object_selection)} if object_selection is not None else {}),
    }


def _text_rows(text: FrozenTextFeatures, position: int, selection: list[list[str]] | None
               ) -> tuple[torch.Tensor, list[str], int]:
    """The text-node rows of the instance at ``position``: head and tail, then the selected spans
    found in its sentence (``[2 + kept, d]``), the kept spans, and how many were dropped."""
    if selection is None:
        return text.entities[position], [], 0
    found = text.phrase_found[position]
    kept = [phrase for phrase, ok in zip(selection[position], found) if ok]
    rows = torch.cat([text.entities[position], text.phrases[position]]) if kept else text.entities[position]
    return rows, kept, len(found) - len(kept)


def with_fold_text_features(
    built: BuiltSplit, data_config: DataConfig, split: str, folds: Sequence[Sequence[int]],
    fold_encoders: Sequence[TextEncoderConfig], feature_config: FeatureConfig,
    selector: NodeSelector | PromptSelectors | None = None, cache: FeatureCache | None = None,
    instances: Sequence[Instance] | None = None,
) -> BuiltSplit:
    """Out-of-fold text features (cross-fitting): ``built`` (``split`` as :func:`build_split` made it
    with ``feature_config`` from ``instances``, read here if ``None``) with the text nodes of the instances at positions ``folds[f]`` taken from
    the encoder of ``fold_encoders[f]`` (trained without those instances) instead.

    Only the text side changes (head, tail, text-LLM span rows); the visual nodes do not depend on
    the text encoder and are kept. The spans are the split's own selections (cached), so each
    fold's features come from exactly the spans ``built`` holds; the fold's text features go through
    the feature cache like any other. The returned report is ``built``'s: the fold encoders share the
    tokenizer (checked below), so truncations and dropped spans are the same.

    Raises:
        ValueError: the folds are not a partition of the split's positions, their number differs from
            the encoders', or a fold encoder's tokenizer finds other spans in a sentence than the one
            that built the split (they must share one tokenizer).
    """
    positions = sorted(p for fold in folds for p in fold)
    if positions != list(range(len(built.nodes))) or len(folds) != len(fold_encoders):
        raise ValueError(f"need {len(fold_encoders)} folds that together hold each of the {len(built.nodes)} "
                         f"positions of {split} once, got {len(folds)} folds holding {len(positions)} positions")
    cache = cache or feature_cache(feature_config)
    instances = load_split(data_config, split) if instances is None else instances
    text_selection, _, _ = split_selections(data_config, split, instances, PromptSelectors.of(selector),
                                            feature_config, cache)
    nodes = list(built.nodes)
    for fold, text_config in zip(folds, fold_encoders):
        members = [instances[p] for p in fold]
        chosen = [text_selection[p] for p in fold] if text_selection is not None else None
        text = cached_text_features(data_config.path, split, members, text_config, cache, chosen,
                                    data_file=split_file(data_config, split))
        for row, position in enumerate(fold):
            rows, kept, _ = _text_rows(text, row, chosen)
            if nodes[position].text_names[2:] != kept:
                raise ValueError(f"{split} instance {instances[position].index}: the encoder {text_config.model} finds "
                                 f"the spans {kept}, the split was built with {nodes[position].text_names[2:]}")
            nodes[position] = replace(nodes[position], text_features=rows)
    return BuiltSplit(nodes, built.report)


def _compute_nodes(
    data_config: DataConfig, split: str, feature_config: FeatureConfig, cache: FeatureCache,
    instances: Sequence[Instance], text_selection: list[list[str]] | None, visual_selection: list[list[str]],
    object_selection: dict[str, list[list[str]]] | None = None, text_placeholders: bool = False,
) -> tuple[list[InstanceNodes], BuildReport]:
    """The nodes of ``instances`` (see the module docstring) and the :class:`BuildReport`: the text
    rows of every instance, then the visual rows of its source
    (:func:`~vmhan_lib.features.visual_nodes.visual_rows`); an instance without image or caption gets
    ``[0, width]`` visual rows; with ``text_placeholders`` the text rows are zeros (no encoder pass)."""
    text = placeholder_text_features(instances, feature_config.text, text_selection) if text_placeholders else \
        cached_text_features(data_config.path, split, instances, feature_config.text, cache, text_selection,
                             data_file=split_file(data_config, split))
    material = visual_material(data_config, split, instances, feature_config, cache, visual_selection, object_selection)
    nodes: list[InstanceNodes] = []
    without_image: Counter[str] = Counter()
    failed: dict[str, str] = {}
    not_found = 0
    for position, instance in enumerate(tqdm(instances, desc=f"build {split} nodes", disable=not cache.progress)):
        text_features, kept_phrases, dropped = _text_rows(text, position, text_selection)
        not_found += dropped
        text_names = [instance.head.name, instance.tail.name, *kept_phrases]
        reason, error = material.missing(instance)
        if reason:
            without_image[reason] += 1
            if error:
                failed.setdefault(instance.img_id, error)
            nodes.append(InstanceNodes(text_features.clone(), torch.zeros((0, material.width)), text_names, [],
                                       n_objects=0, has_image=False))
            continue
        llm_phrases = visual_selection[position]
        visual_features, object_names = visual_rows(material, instance, position, llm_phrases)
        nodes.append(InstanceNodes(
            text_features.clone(), visual_features, text_names, [IMAGE_NODE_NAME, *object_names, *llm_phrases],
            n_objects=len(object_names), has_image=True, tail_visual_row=1 if instance.tail_object else None,
        ))
    report = BuildReport(split=split, n_instances=len(instances), without_image=dict(without_image),
                         n_truncated=text.n_truncated, text_nodes_not_found=not_found,
                         visual_source=feature_config.visual_source, n_failed_images=len(failed),
                         failed_images=list(failed.values())[:MAX_NAMED_FAILURES],
                         object_selections=sum(len(v) for v in (object_selection or {}).values()))
    return nodes, report
