"""Which hypergraph is built for an instance (Eq. 1-3): node kinds, caps and hyperedge types.

Torch-free, so configs can be imported, compared and stored anywhere.

Where the LLM-selected nodes belong (the paper's Eq. 1-3 list only v_h, v_t, v_I and the k
objects; docs/paper_choices.md#hyperedge-membership puts "the text nodes chosen for the pair" in the textual edge):

- text-LLM nodes (the m spans chosen by the text LLM) are textual nodes: they join the global and
  the textual hyperedge, not the inter-modal ones (which connect *one* entity with the image);
- visual-LLM nodes (the n image entities/actions chosen by the VLM) are visual nodes, treated like
  the objects: they join the global, visual, head-visual and tail-visual hyperedges.

Hyperedge columns always follow :data:`EDGE_TYPES` order, restricted to the enabled types.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

EDGE_TYPES: tuple[str, ...] = ("global", "textual", "visual", "head_visual", "tail_visual")
"""Hyperedge types in column order: Eq. 1 (global), Eq. 2 (textual, visual), Eq. 3 (head/tail-visual)."""

INTRA_MODAL_EDGES: tuple[str, ...] = ("textual", "visual")
INTER_MODAL_EDGES: tuple[str, ...] = ("head_visual", "tail_visual")
SCOPES: tuple[str, ...] = ("pair", "sentence")
"""What one hypergraph holds: one entity pair (Eq. 1-3 as written) or every pair of a sentence-image
pair (the abstract's reading; :mod:`vmhan_lib.hypergraph.sentence`)."""


class NodeRole(IntEnum):
    """What a node is; ``PADDING`` marks the padded slots of a batch."""

    PADDING = -1
    HEAD = 0
    TAIL = 1
    TEXT_LLM = 2
    IMAGE = 3
    OBJECT = 4
    VISUAL_LLM = 5


class Modality(IntEnum):
    PADDING = -1
    TEXT = 0
    VISUAL = 1


@dataclass(frozen=True)
class HypergraphConfig:
    """Hypergraph construction options.

    Attributes:
        edge_types: enabled hyperedge types, a subset of :data:`EDGE_TYPES` (default: all five);
            a disabled type has no column in the incidence matrix.
        use_text_llm: keep the text-LLM nodes (default True; False = "w/o Text LLM Enhancement").
        use_visual_llm: keep the visual-LLM nodes (default True; False = "w/o Visual LLM Enhancement").
        use_visual: keep any visual node at all (default True; False = text-only hypergraph,
            no image, object or visual-LLM node).
        scope: ``pair`` (default: one hypergraph per entity pair, Eq. 1-3 as written) or
            ``sentence`` (one hypergraph per sentence-image pair holding all its entity pairs,
            :mod:`vmhan_lib.hypergraph.sentence`); every switch above keeps its meaning in both.

    Every node of the instance's features takes part: how many objects (k), text-LLM (m) and
    visual-LLM (n) nodes an instance has is decided once, in
    :class:`vmhan_lib.features.config.FeatureConfig`.
    """

    edge_types: tuple[str, ...] = EDGE_TYPES
    use_text_llm: bool = True
    use_visual_llm: bool = True
    use_visual: bool = True
    scope: str = "pair"

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"unknown hypergraph scope {self.scope!r}; allowed: {', '.join(SCOPES)}")
        unknown = [name for name in self.edge_types if name not in EDGE_TYPES]
        if unknown:
            raise ValueError(f"unknown hyperedge type(s) {unknown}; allowed: {', '.join(EDGE_TYPES)}")
        if len(set(self.edge_types)) != len(self.edge_types):
            raise ValueError(f"duplicate hyperedge types in {self.edge_types}")
        ordered = tuple(name for name in EDGE_TYPES if name in self.edge_types)
        object.__setattr__(self, "edge_types", ordered)

    def without_edges(self, *names: str) -> "HypergraphConfig":
        """A copy with the hyperedge types ``names`` switched off."""
        unknown = [name for name in names if name not in EDGE_TYPES]
        if unknown:
            raise ValueError(f"unknown hyperedge type(s) {unknown}; allowed: {', '.join(EDGE_TYPES)}")
        return replace(self, edge_types=tuple(name for name in self.edge_types if name not in names))
