"""A batch of multi-modal hypergraphs (Eq. 1-3) as padded dense tensors.

Each instance's hypergraph has N_b = N_t,b + N_v,b nodes (text first, then visual) and the
hyperedges of :data:`~vmhan_lib.hypergraph.config.EDGE_TYPES` enabled in the config. A batch pads
every instance to ``N = N_t + N_v`` node slots (``N_t`` text slots, then ``N_v`` visual slots) and
keeps one incidence column per enabled hyperedge type:

    H[b, i, j] = 1  iff node slot i of instance b belongs to hyperedge j of instance b

with H = 0 on padded slots. A hyperedge with no node in an instance is masked (``edge_mask``
False, column all zero): e.g. the visual edge of an instance without visual nodes. The inter-modal
edges head-visual / tail-visual are masked too when the instance has no visual node, since they
would otherwise degenerate to the singletons {v_h} / {v_t} and connect no modalities.

Slot layout, fixed: slot 0 = head v_h, slot 1 = tail v_t, slots 2.. = text-LLM nodes, then from
slot ``N_t``: image v_I (if present), the k objects, the n visual-LLM nodes.

This is ``hypergraph.scope = pair``: one hypergraph per entity pair, classified from slots 0 and 1.
Sentence scope (:mod:`vmhan_lib.hypergraph.sentence`) fills the same :class:`HypergraphBatch` with one
hypergraph per sentence, several pairs each (:attr:`HypergraphBatch.pairs`).

:func:`collate_hypergraphs` copies features in a loop over instances (collation only); the
incidence is derived from the node roles in one vectorised step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch

from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.config import EDGE_TYPES, HypergraphConfig, Modality, NodeRole

HEAD_SLOT = 0
TAIL_SLOT = 1


@dataclass
class HypergraphBatch:
    """B padded hypergraphs.

    Attributes:
        text_features: ``[B, N_t, d_text]`` raw text-node features (zeros on padded slots).
        visual_features: ``[B, N_v, d_visual]`` raw visual-node features (zeros on padded slots).
        node_mask: ``[B, N]`` bool, True on real nodes; ``N = N_t + N_v``.
        node_role: ``[B, N]`` long, :class:`NodeRole` values (``PADDING`` = -1).
        modality: ``[B, N]`` long, :class:`Modality` values (``PADDING`` = -1).
        incidence: ``[B, N, E]`` float 0/1, one column per entry of ``edge_types``.
        edge_mask: ``[B, E]`` bool, True where the hyperedge has at least one node.
        edge_types: names of the E incidence columns, in :data:`EDGE_TYPES` order.
        node_names: per instance, the labels of its slots (``""`` on padded slots), for case studies.
        labels: ``[B]`` long relation ids, or None.
        tail_source: ``[B]`` long, the node whose projected features the tail slot takes (MORE: the
            tail's object node; :data:`TAIL_SLOT` itself otherwise), or None: every tail is its slot.
        pairs: ``[P, 3]`` long, the entity pairs to classify as (graph, head slot, tail slot), in
            the order of ``labels``; None: one pair per graph, its slots 0 and 1 (pair scope). Sentence
            scope (:func:`vmhan_lib.hypergraph.sentence.collate_sentences`) has several per graph.
        edge_names: per graph, a label of each incidence column (``""`` on padded columns), whose
            type is the part before any ``:``; None: the columns are ``edge_types`` (pair scope).
    """

    text_features: torch.Tensor
    visual_features: torch.Tensor
    node_mask: torch.Tensor
    node_role: torch.Tensor
    modality: torch.Tensor
    incidence: torch.Tensor
    edge_mask: torch.Tensor
    edge_types: tuple[str, ...]
    node_names: list[list[str]]
    labels: torch.Tensor | None = None
    tail_source: torch.Tensor | None = None
    pairs: torch.Tensor | None = None
    edge_names: list[list[str]] | None = None

    @property
    def batch_size(self) -> int:
        return self.node_mask.shape[0]

    @property
    def pair_index(self) -> torch.Tensor:
        """``[P, 3]`` (graph, head slot, tail slot) of every pair classified: :attr:`pairs`, or in
        pair scope ``(b, HEAD_SLOT, TAIL_SLOT)`` for every graph b."""
        if self.pairs is not None:
            return self.pairs
        graphs = torch.arange(self.batch_size, device=self.node_mask.device)
        return torch.stack([graphs, torch.full_like(graphs, HEAD_SLOT), torch.full_like(graphs, TAIL_SLOT)], dim=1)

    @property
    def num_text_slots(self) -> int:
        return self.text_features.shape[1]

    @property
    def num_nodes(self) -> int:
        return self.node_mask.shape[1]

    @property
    def num_edges(self) -> int:
        return self.incidence.shape[2]

    def to(self, device: torch.device | str) -> "HypergraphBatch":
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


KeptRows = tuple[list[int], list[NodeRole], list[int], list[NodeRole]]
"""What :func:`_kept_rows` returns: text rows, text roles, visual rows, visual roles."""


def _kept_rows(nodes: InstanceNodes, config: HypergraphConfig) -> KeptRows:
    """Row indices and roles of the text and visual nodes of ``nodes`` that the config keeps."""
    text_rows = [0, 1]
    if config.use_text_llm:
        text_rows += list(range(2, 2 + nodes.n_text_llm))
    text_roles = [NodeRole.HEAD, NodeRole.TAIL] + [NodeRole.TEXT_LLM] * (len(text_rows) - 2)

    visual_rows: list[int] = []
    visual_roles: list[NodeRole] = []
    if config.use_visual:
        first_object = int(nodes.has_image)
        if nodes.has_image:
            visual_rows.append(0)
            visual_roles.append(NodeRole.IMAGE)
        objects = list(range(first_object, first_object + nodes.n_objects))
        visual_rows += objects
        visual_roles += [NodeRole.OBJECT] * len(objects)
        if config.use_visual_llm:
            first_llm = first_object + nodes.n_objects
            llm = list(range(first_llm, first_llm + nodes.n_visual_llm))
            visual_rows += llm
            visual_roles += [NodeRole.VISUAL_LLM] * len(llm)
    return text_rows, text_roles, visual_rows, visual_roles


def incidence_from_roles(node_role: torch.Tensor, edge_types: Sequence[str]) -> torch.Tensor:
    """The incidence ``[B, N, E]`` (float 0/1) of Eq. 1-3 from the node roles ``[B, N]``.

    global = all nodes; textual = {v_h, v_t, text-LLM}; visual = {v_I, objects, visual-LLM};
    head-visual = {v_h} + visual; tail-visual = {v_t} + visual (inter-modal edges are empty when
    the instance has no visual node).
    """
    is_text = (node_role == NodeRole.HEAD) | (node_role == NodeRole.TAIL) | (node_role == NodeRole.TEXT_LLM)
    is_visual = (node_role == NodeRole.IMAGE) | (node_role == NodeRole.OBJECT) | (node_role == NodeRole.VISUAL_LLM)
    has_visual = is_visual.any(dim=1, keepdim=True)  # [B, 1]
    members = {
        "global": node_role != NodeRole.PADDING,
        "textual": is_text,
        "visual": is_visual,
        "head_visual": ((node_role == NodeRole.HEAD) & has_visual) | is_visual,
        "tail_visual": ((node_role == NodeRole.TAIL) & has_visual) | is_visual,
    }
    unknown = [name for name in edge_types if name not in members]
    if unknown:
        raise ValueError(f"unknown hyperedge type(s) {unknown}; allowed: {', '.join(EDGE_TYPES)}")
    if not edge_types:
        return node_role.new_zeros((*node_role.shape, 0), dtype=torch.float32)
    return torch.stack([members[name] for name in edge_types], dim=-1).float()  # [B, N, E]


def _pad_nodes(
    instances: Sequence[InstanceNodes], kept: Sequence[KeptRows], num_text: int, num_visual: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[list[str]]]:
    """Copy each instance's kept nodes into the padded slots.

    Instance b's kept text rows fill text slots ``0 .. len(text_rows)-1`` and its kept visual rows
    fill visual slots ``0 .. len(visual_rows)-1`` (node slots ``N_t ..`` of the joint layout); the
    rest stays padding.

    Returns:
        ``text_features [B, N_t, d_text]``, ``visual_features [B, N_v, d_visual]``,
        ``node_role [B, N]`` (``PADDING`` on padded slots) and the slot names per instance.
    Raises:
        ValueError: an instance whose feature widths differ from instance 0's.
    """
    d_text, d_visual = instances[0].text_features.shape[1], instances[0].visual_features.shape[1]
    batch_size, dtype = len(instances), instances[0].text_features.dtype
    text_features = torch.zeros(batch_size, num_text, d_text, dtype=dtype)
    visual_features = torch.zeros(batch_size, num_visual, d_visual, dtype=dtype)
    node_role = torch.full((batch_size, num_text + num_visual), int(NodeRole.PADDING), dtype=torch.long)
    node_names: list[list[str]] = []
    for b, (nodes, (text_rows, text_roles, visual_rows, visual_roles)) in enumerate(zip(instances, kept)):
        if nodes.text_features.shape[1] != d_text or nodes.visual_features.shape[1] != d_visual:
            raise ValueError(
                f"instance {b} has widths ({nodes.text_features.shape[1]}, {nodes.visual_features.shape[1]}), "
                f"expected ({d_text}, {d_visual}) like instance 0"
            )
        text_features[b, : len(text_rows)] = nodes.text_features[text_rows]
        visual_features[b, : len(visual_rows)] = nodes.visual_features[visual_rows]
        node_role[b, : len(text_rows)] = torch.tensor([int(r) for r in text_roles], dtype=torch.long)
        node_role[b, num_text : num_text + len(visual_rows)] = torch.tensor(
            [int(r) for r in visual_roles], dtype=torch.long
        )
        names = [""] * (num_text + num_visual)
        names[: len(text_rows)] = [nodes.text_names[i] for i in text_rows]
        names[num_text : num_text + len(visual_rows)] = [nodes.visual_names[i] for i in visual_rows]
        node_names.append(names)
    return text_features, visual_features, node_role, node_names


def _modality(node_mask: torch.Tensor, num_text: int) -> torch.Tensor:
    """``[B, N]`` :class:`Modality` of each slot: ``TEXT`` on real nodes of slots ``< N_t``,
    ``VISUAL`` on real nodes of slots ``>= N_t``, ``PADDING`` elsewhere."""
    modality = torch.full_like(node_mask, int(Modality.PADDING), dtype=torch.long)
    modality[:, :num_text][node_mask[:, :num_text]] = int(Modality.TEXT)
    modality[:, num_text:][node_mask[:, num_text:]] = int(Modality.VISUAL)
    return modality


def _tail_source(instances: Sequence[InstanceNodes], kept: Sequence[KeptRows], num_text: int) -> torch.Tensor | None:
    """``[B]`` slot whose projected features the tail takes: the slot of the instance's
    ``tail_visual_row`` where that visual node is kept, else :data:`TAIL_SLOT`; ``None`` when no
    instance names a tail row."""
    if all(nodes.tail_visual_row is None for nodes in instances):
        return None
    tail_source = torch.full((len(instances),), TAIL_SLOT, dtype=torch.long)
    for b, (nodes, (_, _, visual_rows, _)) in enumerate(zip(instances, kept)):
        if nodes.tail_visual_row is not None and nodes.tail_visual_row in visual_rows:  # absent when visual nodes are off
            tail_source[b] = num_text + visual_rows.index(nodes.tail_visual_row)
    return tail_source


def collate_hypergraphs(
    instances: Sequence[InstanceNodes],
    config: HypergraphConfig = HypergraphConfig(),
    labels: Sequence[int] | torch.Tensor | None = None,
) -> HypergraphBatch:
    """Pad the hypergraphs of ``instances`` into one :class:`HypergraphBatch`.

    ``N_t`` / ``N_v`` are the most kept text / visual nodes of any instance; the incidence
    ``[B, N, E]`` follows from the node roles (:func:`incidence_from_roles`) and
    ``edge_mask [B, E]`` marks the hyperedges with at least one node.

    Args:
        instances: the node features of each instance (see :class:`InstanceNodes`).
        config: which nodes and hyperedges to build.
        labels: optional relation ids, one per instance.
    """
    if not instances:
        raise ValueError("cannot collate an empty list of instances")
    kept = [_kept_rows(nodes, config) for nodes in instances]
    num_text = max(len(text_rows) for text_rows, *_ in kept)
    num_visual = max(len(visual_rows) for _, _, visual_rows, _ in kept)
    batch_size = len(instances)
    text_features, visual_features, node_role, node_names = _pad_nodes(instances, kept, num_text, num_visual)
    node_mask = node_role != NodeRole.PADDING
    incidence = incidence_from_roles(node_role, config.edge_types)
    label_tensor = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
    if label_tensor is not None and label_tensor.shape != (batch_size,):
        raise ValueError(f"labels must have one id per instance ({batch_size}), got shape {tuple(label_tensor.shape)}")
    return HypergraphBatch(
        text_features=text_features,
        visual_features=visual_features,
        node_mask=node_mask,
        node_role=node_role,
        modality=_modality(node_mask, num_text),
        incidence=incidence,
        edge_mask=incidence.sum(dim=1) > 0,
        edge_types=config.edge_types,
        node_names=node_names,
        labels=label_tensor,
        tail_source=_tail_source(instances, kept, num_text),
    )
