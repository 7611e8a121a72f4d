"""The hand-off from the features layer to the hypergraph layer: the nodes of one instance.

One :class:`InstanceNodes` holds the raw (encoder-width) features of every node of the hypergraph
of one (sentence, entity pair), Eq. 1-3 of the paper:

- textual nodes, ``text_features[0]`` = head entity v_h, ``text_features[1]`` = tail entity v_t,
  ``text_features[2:]`` = the m text nodes chosen for the pair (LLM text enhancement);
- visual nodes, ``visual_features[0]`` = the image node v_I (absent when ``has_image`` is False),
  ``visual_features[1:]`` = the k objects chosen for the pair, then the n image entities/actions
  chosen by the visual LLM (``n_objects`` tells where the objects end).

Names travel with the features so that case studies can label every node. On MORE the tail is an
object of the image: ``tail_visual_row`` names its visual row, whose features the hypergraph's tail
slot takes (:func:`vmhan_lib.hypergraph.batch.collate_hypergraphs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass
class InstanceNodes:
    """Node features of one instance.

    Attributes:
        text_features: ``[2 + m, d_text]`` head, tail, then the m selected text nodes.
        visual_features: ``[1 + k + n, d_visual]`` image node, k objects, n visual-LLM nodes;
            ``[0, d_visual]`` when the instance has no visual information.
        text_names: ``2 + m`` labels (entity names, selected spans).
        visual_names: labels of the visual nodes (``"<image>"``, object names, ...).
        n_objects: how many rows after the image node are objects (the rest are visual-LLM nodes).
        has_image: whether ``visual_features[0]`` is the image node.
        tail_visual_row: MORE: the visual row of the tail's own object (the tail slot's features);
            ``None`` (MNRE): the tail slot is ``text_features[1]``.
    """

    text_features: torch.Tensor
    visual_features: torch.Tensor
    text_names: list[str]
    visual_names: list[str]
    n_objects: int
    has_image: bool = True
    tail_visual_row: int | None = None

    def __post_init__(self) -> None:
        if self.text_features.ndim != 2 or self.text_features.shape[0] < 2:
            raise ValueError(f"text_features must be [2 + m, d], got {tuple(self.text_features.shape)}")
        if self.visual_features.ndim != 2:
            raise ValueError(f"visual_features must be [n_visual, d], got {tuple(self.visual_features.shape)}")
        if len(self.text_names) != self.text_features.shape[0]:
            raise ValueError("text_names must name every textual node")
        if len(self.visual_names) != self.visual_features.shape[0]:
            raise ValueError("visual_names must name every visual node")
        expected_min = int(self.has_image) + self.n_objects
        if self.visual_features.shape[0] < expected_min:
            raise ValueError(f"{self.visual_features.shape[0]} visual rows < image + {self.n_objects} objects")
        if self.tail_visual_row is not None and not int(self.has_image) <= self.tail_visual_row < expected_min:
            raise ValueError(f"tail_visual_row {self.tail_visual_row} is not an object row (1..{expected_min - 1})")

    @property
    def n_text_llm(self) -> int:
        return self.text_features.shape[0] - 2

    @property
    def n_visual_llm(self) -> int:
        return self.visual_features.shape[0] - int(self.has_image) - self.n_objects


def pack_nodes(nodes: Sequence[InstanceNodes]) -> dict[str, Any]:
    """Stack a list of nodes into a few tensors and lists (a payload loadable with ``weights_only``:
    the feature cache and the case-study bundles store nodes this way)."""
    return {
        "text_features": torch.cat([n.text_features for n in nodes]),
        "text_counts": [n.text_features.shape[0] for n in nodes],
        "visual_features": torch.cat([n.visual_features for n in nodes]),
        "visual_counts": [n.visual_features.shape[0] for n in nodes],
        "text_names": [n.text_names for n in nodes],
        "visual_names": [n.visual_names for n in nodes],
        "n_objects": [n.n_objects for n in nodes],
        "has_image": [n.has_image for n in nodes],
        "tail_visual_row": [n.tail_visual_row for n in nodes],
    }


def unpack_nodes(payload: dict[str, Any]) -> list[InstanceNodes]:
    """The nodes :func:`pack_nodes` stacked, in order."""
    text = torch.split(payload["text_features"], payload["text_counts"])
    visual = torch.split(payload["visual_features"], payload["visual_counts"])
    return [
        InstanceNodes(text[i].clone(), visual[i].clone(), payload["text_names"][i], payload["visual_names"][i],
                      payload["n_objects"][i], payload["has_image"][i],
                      payload.get("tail_visual_row", [None] * len(payload["text_counts"]))[i])
        for i in range(len(payload["text_counts"]))
    ]
