"""The visual rows of one instance, one function per ``features.visual_source``.

:func:`visual_material` gathers once per split what the rows are made from: the caption index
and/or the image index the source reads (:func:`visual_indexes`), the sentence embeddings of the
entity names (to rank caption objects) and of the visual-LLM phrases, and the object prompt's
choice. Then, per instance, :func:`visual_rows` stacks the image node, the k object nodes of the
source (:func:`caption_rows`, :func:`image_rows`, :func:`both_rows`) and the visual-LLM nodes.

Rows of different encoders sit in separate column blocks of one width (``[image encoder |
sentence embedder]``, zeros in the other block), so the model's visual projection sees every
kind; ``captions`` alone has the sentence block only. MORE is the ``images`` source whose
objects are the annotated ones, the tail's own object always first (visual row 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from vmhan_lib.data.captions import captions_path
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import Instance
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.caption_nodes import CaptionIndex, build_caption_index, rank_objects
from vmhan_lib.features.config import MAX_CAPTION_TOKENS, FeatureConfig
from vmhan_lib.features.image_nodes import ImageIndex, build_image_index, image_index_key
from vmhan_lib.features.images import match_object_names
from vmhan_lib.features.text_encoder import SentenceEmbedder

SourceRows = tuple[torch.Tensor, torch.Tensor, list[str]]
"""One instance's rows of a visual source: the image node ``[1, d]`` (the source's own columns, not
yet placed), the chosen objects ``[k', width]`` placed in their block, and the objects' names."""


def uses_captions(feature_config: FeatureConfig) -> bool:
    """Whether the visual source reads the captions (``captions``, ``both``)."""
    return feature_config.visual_source in ("captions", "both")


def uses_images(feature_config: FeatureConfig) -> bool:
    """Whether the visual source reads the images (``images``, ``both``)."""
    return feature_config.visual_source in ("images", "both")


def caption_files(data_config: DataConfig, split: str, captioners: Sequence[str]) -> list[Path]:
    """The caption files of ``captioners`` for ``split`` (MORE has none here)."""
    if data_config.dataset == "more":
        return []
    return [captions_path(data_config.path, c, split) for c in sorted(set(captioners))]


def annotated(instances: Sequence[Instance]) -> dict[str, list[tuple[str, tuple[float, ...]]]] | None:
    """MORE: the annotated objects of each image (from its instances), ``None`` for MNRE."""
    objects = {i.img_id: i.image_objects for i in instances if getattr(i, "image_objects", None) is not None}
    return {img: [(name, tuple(box)) for name, box in items] for img, items in objects.items()} if objects else None


def visual_indexes(
    data_config: DataConfig, split: str, instances: Sequence[Instance], feature_config: FeatureConfig,
    cache: FeatureCache,
) -> tuple[CaptionIndex | None, ImageIndex | None]:
    """The caption index and the image index the visual source needs (each ``None`` when not used)."""
    img_ids = [i.img_id for i in instances]
    captions = build_caption_index(
        data_config.path, split, img_ids, data_config.captioners, feature_config.captions, cache,
        with_objects=feature_config.k_objects > 0,
    ) if uses_captions(feature_config) else None
    images = build_image_index(
        data_config.image_path, split, img_ids, feature_config.images, cache,
        annotated=annotated(instances),
    ) if uses_images(feature_config) else None
    return captions, images


def visual_key(data_config: DataConfig, split: str, instances: Sequence[Instance],
               feature_config: FeatureConfig) -> dict[str, Any]:
    """What the visual material depends on beyond the caption settings (empty for ``captions``)."""
    if not uses_images(feature_config):
        return {}
    return {"visual_source": feature_config.visual_source,
            "image_nodes": image_index_key(data_config.image_path, split, [i.img_id for i in instances],
                                           feature_config.images, annotated(instances))}


def _block(rows: torch.Tensor, offset: int, width: int) -> torch.Tensor:
    """``rows`` ``[r, d]`` placed at columns ``offset:offset + d`` of a ``[r, width]`` zero tensor."""
    if rows.shape[1] == width:
        return rows
    placed = rows.new_zeros((rows.shape[0], width))
    placed[:, offset:offset + rows.shape[1]] = rows
    return placed


@dataclass
class VisualMaterial:
    """What the visual rows of a split's instances are made from.

    Attributes:
        source: the visual source (``captions``, ``images``, ``both``).
        captions, images: the indexes the source reads (``None`` when not read).
        sentence_dim: the sentence embedder's width (the sentence block).
        k: object nodes per instance.
        names: entity name -> its row of ``name_embeddings``; ``name_embeddings`` is ``None``
            without captions (they rank the caption objects by relevance to the pair).
        phrases: visual-LLM phrase -> its row of ``phrase_embeddings``.
        object_selection: the object prompt's choice per candidate source and instance, or ``None``.
    """

    source: str
    captions: CaptionIndex | None
    images: ImageIndex | None
    sentence_dim: int
    k: int
    names: dict[str, int]
    name_embeddings: torch.Tensor | None
    phrases: dict[str, int]
    phrase_embeddings: torch.Tensor
    object_selection: dict[str, list[list[str]]] | None

    @property
    def image_dim(self) -> int:
        """Width of the image-encoder block (0 without images)."""
        return self.images.dim if self.images is not None else 0

    @property
    def width(self) -> int:
        """Width of every visual row: ``[image encoder | sentence embedder]``."""
        return self.image_dim + self.sentence_dim

    def missing(self, instance: Instance) -> tuple[str, str]:
        """Why ``instance`` has no visual rows (``""`` when it has them), and the image file's error."""
        image_row = self.images.row(instance.img_id) if self.images is not None else None
        caption_row = self.captions.row(instance.img_id) if self.captions is not None else None
        reason = (self.images.missing_reason[image_row] if self.images is not None else "") or (
            self.captions.missing_reason[caption_row] if self.captions is not None else "")
        return reason, self.images.errors[image_row] if self.images is not None else ""

    def choice(self, source: str, position: int) -> list[str] | None:
        """The object prompt's names for the instance at ``position`` among ``source``'s candidates."""
        return self.object_selection[source][position] if self.object_selection is not None else None


def visual_material(
    data_config: DataConfig, split: str, instances: Sequence[Instance], feature_config: FeatureConfig,
    cache: FeatureCache, visual_selection: list[list[str]], object_selection: dict[str, list[list[str]]] | None,
) -> VisualMaterial:
    """The :class:`VisualMaterial` of ``instances``: the source's indexes (through the cache), and the
    sentence embeddings of the entity names (captions only) and of the visual-LLM phrases."""
    show = cache.progress
    captions, images = visual_indexes(data_config, split, instances, feature_config, cache)
    embedder = SentenceEmbedder(feature_config.captions.embedder, MAX_CAPTION_TOKENS, cache.batch_size, cache.device)
    names = list(dict.fromkeys(n for i in instances for n in (i.head.name, i.tail.name)))
    name_embeddings = embedder.embed(names, show_progress=show, desc="embed entity names") if captions is not None else None
    phrases = list(dict.fromkeys(p for chosen in visual_selection for p in chosen))
    phrase_embeddings = embedder.embed(phrases, show_progress=show, desc="embed visual-LLM nodes")
    return VisualMaterial(
        source=feature_config.visual_source, captions=captions, images=images, sentence_dim=embedder.dimension,
        k=feature_config.k_objects, names={name: row for row, name in enumerate(names)}, name_embeddings=name_embeddings,
        phrases={phrase: row for row, phrase in enumerate(phrases)}, phrase_embeddings=phrase_embeddings,
        object_selection=object_selection)


def caption_rows(material: VisualMaterial, instance: Instance, position: int) -> SourceRows:
    """``captions``: the image node = the caption embedding; the k caption-named objects most
    relevant to (h, t) by embedding, or the object prompt's choice in its order."""
    captions = material.captions
    row = captions.row(instance.img_id)
    phrases = captions.object_phrases[row]
    choice = material.choice("captions", position)
    if choice is not None:
        picked = set(choice)
        order = {phrase: rank for rank, phrase in enumerate(choice)}
        chosen = sorted([i for i, phrase in enumerate(phrases) if phrase in picked],
                        key=lambda i: order[phrases[i]])[: material.k]
    else:
        names, embeddings = material.names, material.name_embeddings
        chosen = rank_objects(captions.object_embeddings[row], embeddings[names[instance.head.name]],
                              embeddings[names[instance.tail.name]], material.k)
    objects = _block(captions.object_embeddings[row][chosen], material.image_dim, material.width)
    return captions.image_embeddings[row].unsqueeze(0), objects, [phrases[i] for i in chosen]


def image_rows(material: VisualMaterial, instance: Instance, position: int) -> SourceRows:
    """``images``: the image node = the image encoder's features; the k most confident detections,
    or the object prompt's choice among them. MORE: the tail's annotated object first, then k others."""
    images = material.images
    row = images.row(instance.img_id)
    detected = images.object_names[row]
    choice = material.choice("images", position)
    if instance.tail_object:
        tail = detected.index(instance.tail.name)
        others = [i for i in range(len(detected)) if i != tail]
        if choice is not None:
            others = [others[i] for i in match_object_names([detected[i] for i in others], choice)]
        chosen = [tail, *others[: material.k]]
    elif choice is not None:
        chosen = match_object_names(detected, choice)[: material.k]
    else:
        chosen = list(range(min(material.k, len(detected))))
    objects = _block(images.object_features[row][chosen], 0, material.width)
    return images.image_features[row].unsqueeze(0), objects, [detected[i] for i in chosen]


def both_rows(material: VisualMaterial, instance: Instance, position: int) -> SourceRows:
    """``both``: the image node = image features and caption embedding side by side; the detected
    objects, then the caption objects."""
    image, image_objects, image_names = image_rows(material, instance, position)
    caption, caption_objects, caption_names = caption_rows(material, instance, position)
    return torch.cat([image, caption], dim=1), torch.cat([image_objects, caption_objects]), image_names + caption_names


SOURCE_ROWS: dict[str, Callable[[VisualMaterial, Instance, int], SourceRows]] = {
    "captions": caption_rows, "images": image_rows, "both": both_rows}
"""The rows function of each visual source."""


def visual_rows(material: VisualMaterial, instance: Instance, position: int, llm_phrases: Sequence[str]
                ) -> tuple[torch.Tensor, list[str]]:
    """The visual rows of the instance at ``position`` (it has an image, see
    :meth:`VisualMaterial.missing`), ``[1 + k' + n, width]``: the image node, the source's objects,
    then the visual-LLM phrases ``llm_phrases`` in the sentence block; and the objects' names."""
    node, objects, object_names = SOURCE_ROWS[material.source](material, instance, position)
    llm = (_block(material.phrase_embeddings[[material.phrases[p] for p in llm_phrases]], material.image_dim,
                  material.width) if llm_phrases else torch.zeros((0, material.width)))
    return torch.cat([_block(node, 0, material.width), objects, llm]), object_names
