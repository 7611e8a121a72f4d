"""Sentence scope (``hypergraph.scope = sentence``): one hypergraph per sentence-image pair, all its entity pairs in it.

The paper's abstract: VM-HAN "constructs a multi-modal hypergraph for each sentence-image pair,
explicitly modeling high-order intra-/inter-modal correlations among different entity pairs in the
same context"; its Eq. 1-3 write the hyperedges of one pair (v_h, v_t), which ``scope = pair``
builds (:mod:`vmhan_lib.hypergraph.batch`). Here the P pairs of one sentence share one hypergraph.

Nodes (each once; a node met in several pairs is *pooled*: its features are the mean of its rows
in those pairs' :class:`~vmhan_lib.features.nodes.InstanceNodes`):

- the U entities of the sentence's pairs, keyed by their token span (an entity's start-marker state
  depends on the pair it was marked in: the mean over its pairs, as head or tail);
- the text-LLM nodes of its pairs, deduplicated by (name, occurrence within its pair);
- the image node v_I (the mean of the pairs' image rows, which are the same image);
- the objects: the *union* of the pairs' top-k (deduplicated by name and occurrence, as the
  text-LLM nodes), so every pair keeps the objects chosen for it; then the visual-LLM nodes, likewise
  (visual slots in the pair scope's order: image, objects, visual-LLM nodes).

Hyperedges, in :data:`~vmhan_lib.hypergraph.config.EDGE_TYPES` order, each type only when enabled:

- ``global``: every node (Eq. 1);
- ``textual``: one per pair p, {v_h(p), v_t(p), p's text-LLM nodes} (Eq. 2, per pair);
- ``visual``: every visual node (Eq. 2);
- ``head_visual`` / ``tail_visual``: one entity-visual hyperedge per entity, {v_e} + the visual nodes
  (Eq. 3 for each entity), typed ``head_visual`` when the entity heads some pair (and that type is
  enabled), else ``tail_visual`` (when it is a tail of some pair and that type is enabled); empty,
  like Eq. 3's in pair scope, when the sentence has no visual node.

So every Table 2 switch keeps its meaning: ``edge_types`` removes the same kinds of hyperedges,
``use_text_llm`` / ``use_visual_llm`` / ``use_visual`` the same kinds of nodes. A sentence with one
pair gives exactly the pair-scope hypergraph (same slots, features, incidence columns).

Slot layout: entities first (slot 0, 1 = head and tail of the first pair), then the text-LLM nodes,
then from slot ``N_t`` the visual nodes as in pair scope. :attr:`HypergraphBatch.pairs` lists every
pair as (graph, head slot, tail slot), sentence after sentence, so the classifier (Eq. 9) reads each
pair's head and tail states after the shared V-HAN layers. Collation loops over sentences; the model
runs on the padded batch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HypergraphBatch, _kept_rows, _modality
from vmhan_lib.hypergraph.config import HypergraphConfig, NodeRole


@dataclass(frozen=True)
class SentencePair:
    """One entity pair of a sentence: its nodes and the keys (e.g. token spans) of its two entities."""

    nodes: InstanceNodes
    head: Hashable
    tail: Hashable


@dataclass
class _Pooled:
    """Nodes of one modality of a sentence: key -> slot; the rows, role and name of each slot."""

    slots: dict[Hashable, int] = field(default_factory=dict)
    rows: list[list[torch.Tensor]] = field(default_factory=list)
    roles: list[NodeRole] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, key: Hashable, row: torch.Tensor, role: NodeRole, name: str) -> int:
        """The slot of ``key`` (new at the end if unseen), with ``row`` added to its rows."""
        if key not in self.slots:
            self.slots[key] = len(self.rows)
            self.rows.append([])
            self.roles.append(role)
            self.names.append(name)
        self.rows[self.slots[key]].append(row)
        return self.slots[key]

    def by_role(self) -> "_Pooled":
        """The same nodes with their slots in role order (stable: first appearance within a role)."""
        order = sorted(range(len(self.rows)), key=lambda slot: int(self.roles[slot]))
        return _Pooled({key: order.index(slot) for key, slot in self.slots.items()}, [self.rows[i] for i in order],
                       [self.roles[i] for i in order], [self.names[i] for i in order])

    def features(self, width: int, dtype: torch.dtype) -> torch.Tensor:
        """``[n, width]`` the mean of each slot's rows."""
        if not self.rows:
            return torch.zeros(0, width, dtype=dtype)
        return torch.stack([torch.stack(rows).mean(dim=0) for rows in self.rows])


@dataclass
class _Sentence:
    """The pooled nodes of one sentence and, per pair, its head, tail and text-LLM slots."""

    text: _Pooled
    visual: _Pooled
    pairs: list[tuple[int, int, list[int]]]
    heads: set[int]
    tails: set[int]


def _occurrences(names: Sequence[str]) -> list[tuple[str, int]]:
    """``(name, how many times it came before)`` of each name: the dedup keys within one pair."""
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        keys.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return keys


def _pool(pairs: Sequence[SentencePair], config: HypergraphConfig) -> _Sentence:
    """Every pair's kept nodes, each entity / text-LLM / visual node once (see the module docstring)."""
    text, visual = _Pooled(), _Pooled()
    kept = [_kept_rows(pair.nodes, config) for pair in pairs]
    for pair in pairs:  # entities first, in order of first appearance
        if pair.head == pair.tail:
            raise ValueError(f"a pair's head and tail are the same entity {pair.head!r}")
        text.add(("entity", pair.head), pair.nodes.text_features[0], NodeRole.HEAD, pair.nodes.text_names[0])
        text.add(("entity", pair.tail), pair.nodes.text_features[1], NodeRole.TAIL, pair.nodes.text_names[1])
    heads = {text.slots[("entity", pair.head)] for pair in pairs}
    text.roles = [NodeRole.HEAD if slot in heads else NodeRole.TAIL for slot in range(len(text.roles))]
    slots = []
    for pair, (text_rows, _, visual_rows, visual_roles) in zip(pairs, kept):
        nodes = pair.nodes
        llm_rows = text_rows[2:]
        llm = [text.add(("text-llm", key), nodes.text_features[row], NodeRole.TEXT_LLM, key[0])
               for row, key in zip(llm_rows, _occurrences([nodes.text_names[r] for r in llm_rows]))]
        keys = _occurrences([f"{role.name}:{nodes.visual_names[r]}" for r, role in zip(visual_rows, visual_roles)])
        for row, role, key in zip(visual_rows, visual_roles, keys):
            visual.add(("image",) if role == NodeRole.IMAGE else key, nodes.visual_features[row], role,
                       nodes.visual_names[row])
        slots.append((text.slots[("entity", pair.head)], text.slots[("entity", pair.tail)], llm))
    return _Sentence(text, visual.by_role(), slots, heads, {tail for _, tail, _ in slots})


def _columns(sentence: _Sentence, config: HypergraphConfig, num_text: int) -> list[tuple[str, str, list[int]]]:
    """The hyperedges of one sentence as ``(type, label, member slots)`` in column order."""
    n_text, n_visual = len(sentence.text.rows), len(sentence.visual.rows)
    visual = list(range(num_text, num_text + n_visual))
    names = sentence.text.names
    columns: list[tuple[str, str, list[int]]] = []
    for edge in config.edge_types:
        if edge == "global":
            columns.append((edge, edge, list(range(n_text)) + visual))
        elif edge == "textual":
            columns += [(edge, f"textual: {names[h]} – {names[t]}", [h, t, *llm]) for h, t, llm in sentence.pairs]
        elif edge == "visual":
            columns.append((edge, edge, visual))
        else:
            columns += [(edge, f"{edge}: {names[e]}", [e] + visual if visual else [])
                        for e in range(n_text) if _entity_edge(e, sentence, config) == edge]
    return columns


def _entity_edge(slot: int, sentence: _Sentence, config: HypergraphConfig) -> str | None:
    """The type of the one entity-visual hyperedge of text slot ``slot`` (None: not an entity, or
    its type is switched off): ``head_visual`` when it heads a pair, else ``tail_visual``."""
    if slot in sentence.heads and "head_visual" in config.edge_types:
        return "head_visual"
    if slot in sentence.tails and "tail_visual" in config.edge_types:
        return "tail_visual"
    return None


def collate_sentences(
    sentences: Sequence[Sequence[SentencePair]],
    config: HypergraphConfig,
    labels: Sequence[Sequence[int]] | None = None,
) -> HypergraphBatch:
    """Pad one hypergraph per sentence into a :class:`HypergraphBatch` whose ``pairs`` ``[P, 3]``
    index every pair (graph, head slot, tail slot), sentence after sentence; ``labels`` (one list per
    sentence) become ``[P]`` in that order. Hyperedge columns are padded to the most of any
    sentence (padded columns are all zero, ``edge_mask`` False)."""
    if not sentences or not all(sentences):
        raise ValueError("cannot collate an empty list of sentences, or a sentence without pairs")
    if any(pair.nodes.tail_visual_row is not None for pairs in sentences for pair in pairs):
        raise ValueError("sentence scope needs text tails (MNRE); MORE's tails are image objects")
    pooled = [_pool(pairs, config) for pairs in sentences]
    num_text = max(len(s.text.rows) for s in pooled)
    num_visual = max(len(s.visual.rows) for s in pooled)
    columns = [_columns(s, config, num_text) for s in pooled]
    first = sentences[0][0].nodes
    d_text, d_visual, dtype = first.text_features.shape[1], first.visual_features.shape[1], first.text_features.dtype
    batch_size, num_edges = len(pooled), max(len(c) for c in columns)
    text_features = torch.zeros(batch_size, num_text, d_text, dtype=dtype)
    visual_features = torch.zeros(batch_size, num_visual, d_visual, dtype=dtype)
    node_role = torch.full((batch_size, num_text + num_visual), int(NodeRole.PADDING), dtype=torch.long)
    incidence = torch.zeros(batch_size, num_text + num_visual, num_edges)
    node_names, edge_names, pairs = [], [], []
    for b, (sentence, sentence_columns) in enumerate(zip(pooled, columns)):
        n_text, n_visual = len(sentence.text.rows), len(sentence.visual.rows)
        text_features[b, :n_text] = sentence.text.features(d_text, dtype)
        visual_features[b, :n_visual] = sentence.visual.features(d_visual, dtype)
        roles = [int(r) for r in sentence.text.roles + [NodeRole.PADDING] * (num_text - n_text) + sentence.visual.roles]
        node_role[b, :len(roles)] = torch.tensor(roles, dtype=torch.long)
        for j, (_, _, members) in enumerate(sentence_columns):
            incidence[b, members, j] = 1.0
        node_names.append(sentence.text.names + [""] * (num_text - n_text) + sentence.visual.names
                          + [""] * (num_visual - n_visual))
        edge_names.append([label for _, label, _ in sentence_columns] + [""] * (num_edges - len(sentence_columns)))
        pairs += [(b, head, tail) for head, tail, _ in sentence.pairs]
    node_mask = node_role != NodeRole.PADDING
    flat_labels = None if labels is None else torch.tensor([y for group in labels for y in group], dtype=torch.long)
    if flat_labels is not None and flat_labels.shape != (len(pairs),):
        raise ValueError(f"labels must have one id per pair ({len(pairs)}), got {tuple(flat_labels.shape)}")
    return HypergraphBatch(text_features=text_features, visual_features=visual_features, node_mask=node_mask,
                           node_role=node_role, modality=_modality(node_mask, num_text), incidence=incidence,
                           edge_mask=incidence.sum(dim=1) > 0, edge_types=config.edge_types, node_names=node_names,
                           labels=flat_labels, pairs=torch.tensor(pairs, dtype=torch.long), edge_names=edge_names)
