"""Pictures of one instance's multi-modal hypergraph (Eq. 1-3) and of its V-HAN attention (Eq. 5, 7).

Each ``draw_*`` function takes a :class:`~vmhan_lib.hypergraph.batch.HypergraphBatch` and the
position of one instance in it (:func:`draw_edge_switches`: the instance's nodes), keeps that
instance's real nodes and hyperedge columns only (padded slots and columns are dropped) and returns a
matplotlib figure: the bipartite hypergraph (:func:`draw_hypergraph`), its incidence
(:func:`draw_incidence`), both attention directions beside the hypergraph for case studies
(:func:`draw_hypergraph_attention`), the incidence under the hyperedge switch-offs of Table 2
(:func:`draw_edge_switches`), one sentence in both hypergraph scopes (:func:`draw_scopes`). A
sentence-scope batch (:mod:`vmhan_lib.hypergraph.sentence`) names its columns per graph
(``textual: h – t``), a pair-scope batch by their type. The matrices drawn come from
:func:`instance_incidence` and :func:`attention_matrices`, which tests and notebooks can read directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.hypergraph.config import EDGE_TYPES, INTER_MODAL_EDGES, INTRA_MODAL_EDGES, HypergraphConfig, NodeRole
from vmhan_lib.model.vhan_layer import HypergraphAttention

ROLE_STYLES: dict[NodeRole, tuple[str, str]] = {
    NodeRole.HEAD: ("#d62728", "head v_h"),
    NodeRole.TAIL: ("#1f77b4", "tail v_t"),
    NodeRole.TEXT_LLM: ("#ff9896", "text-LLM node"),
    NodeRole.IMAGE: ("#2ca02c", "image v_I"),
    NodeRole.OBJECT: ("#98df8a", "object v_o"),
    NodeRole.VISUAL_LLM: ("#bcbd22", "visual-LLM node"),
}
"""Colour and legend label of each node role."""
EDGE_COLOURS: dict[str, str] = {"global": "#7f7f7f", "textual": "#e377c2", "visual": "#17becf",
                                "head_visual": "#9467bd", "tail_visual": "#8c564b"}
ATTENTION_DIRECTIONS: dict[str, str] = {
    "edge_from_nodes": "Eq. 5: hyperedge <- nodes (columns sum to 1)",  # alpha_{j,i}
    "node_from_edges": "Eq. 7: node <- hyperedges (rows sum to 1)",  # alpha_{i,j}
}
"""The two attention directions a drawing can show, with their heatmap titles."""


@dataclass(frozen=True)
class InstanceHypergraph:
    """One instance of a batch with its padded slots removed.

    Attributes:
        slots: the batch slots of the real nodes, in slot order.
        node_names: their names.
        node_roles: their :class:`NodeRole`.
        edge_types: the type of each incidence column kept.
        incidence: ``[n_real, E]`` 0/1.
        edge_present: ``[E]`` whether the hyperedge has any node in this instance.
        edge_names: the label of each column (its type in pair scope; ``textual: h – t`` and the like in
            sentence scope).
    """

    slots: tuple[int, ...]
    node_names: tuple[str, ...]
    node_roles: tuple[NodeRole, ...]
    edge_types: tuple[str, ...]
    incidence: np.ndarray
    edge_present: np.ndarray
    edge_names: tuple[str, ...]

    @property
    def node_labels(self) -> list[str]:
        """``name (role)`` for every real node, e.g. ``Obama (head v_h)``."""
        return [f"{name} ({ROLE_STYLES[role][1]})" for name, role in zip(self.node_names, self.node_roles)]

    @property
    def edge_labels(self) -> list[str]:
        """Hyperedge names; a hyperedge with no node in this instance is marked ``(empty)``."""
        return [name if present else f"{name} (empty)" for name, present in zip(self.edge_names, self.edge_present)]


def instance_incidence(batch: HypergraphBatch, index: int) -> InstanceHypergraph:
    """The real nodes, their roles and the incidence of instance ``index`` of ``batch``."""
    if not 0 <= index < batch.batch_size:
        raise IndexError(f"instance {index} outside a batch of {batch.batch_size}")
    slots = tuple(int(s) for s in batch.node_mask[index].nonzero().flatten().tolist())
    names, columns = _edge_names(batch, index), _kept_columns(batch, index)
    return InstanceHypergraph(slots=slots, node_names=tuple(batch.node_names[index][s] for s in slots),
                              node_roles=tuple(NodeRole(int(batch.node_role[index, s])) for s in slots),
                              edge_types=tuple(names[j].split(":")[0] for j in columns),
                              incidence=batch.incidence[index][list(slots)][:, columns].detach().cpu().numpy(),
                              edge_present=batch.edge_mask[index, columns].detach().cpu().numpy(),
                              edge_names=tuple(names[j] for j in columns))


def _edge_names(batch: HypergraphBatch, index: int) -> list[str]:
    """The label of every incidence column of instance ``index`` (``""`` on a sentence batch's padded columns)."""
    return list(batch.edge_types) if batch.edge_names is None else batch.edge_names[index]


def _kept_columns(batch: HypergraphBatch, index: int) -> list[int]:
    """The incidence columns of instance ``index`` that are hyperedges of it (not padding)."""
    return [j for j, name in enumerate(_edge_names(batch, index)) if name]


def attention_matrices(
    attention: Sequence[HypergraphAttention], batch: HypergraphBatch, index: int, layer: int, head: int
) -> dict[str, np.ndarray]:
    """Both attention directions of one layer and head as ``[n_real, E]`` node x hyperedge arrays.

    Returns ``{"edge_from_nodes": alpha_{j,i} (Eq. 5) transposed, "node_from_edges": alpha_{i,j} (Eq. 7)}``
    for the real nodes of instance ``index``; entries outside the incidence are 0 (as the model's).
    """
    if not attention:
        raise ValueError("no attention weights: only V-HAN models (encoder 'vhan') return them")
    if not 0 <= layer < len(attention):
        raise IndexError(f"layer {layer} outside 0..{len(attention) - 1}")
    weights = attention[layer]
    heads = weights.edge_from_nodes.shape[1]
    if not 0 <= head < heads:
        raise IndexError(f"head {head} outside 0..{heads - 1}")
    slots, columns = list(instance_incidence(batch, index).slots), _kept_columns(batch, index)
    edge_from_nodes = weights.edge_from_nodes[index, head].detach().cpu().numpy()  # [E, N]
    node_from_edges = weights.node_from_edges[index, head].detach().cpu().numpy()  # [N, E]
    return {"edge_from_nodes": edge_from_nodes[columns][:, slots].T, "node_from_edges": node_from_edges[slots][:, columns]}


def _heatmap(ax: plt.Axes, values: np.ndarray, mask: np.ndarray | None, rows: list[str], columns: list[str],
             title: str, cmap: str = "Blues", value_format: str = ".0f") -> None:
    """An annotated heatmap of ``values`` (defaults: a 0/1 incidence); cells where ``mask`` is False
    are left blank (``None``: none is)."""
    mask = np.ones_like(values, dtype=bool) if mask is None else mask
    shown = np.ma.masked_array(values, mask=~mask)
    ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for (row, column), value in np.ndenumerate(values):
        if mask[row, column]:
            ax.text(column, row, format(value, value_format), ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 else "black")
    ax.set_title(title)


def draw_incidence(batch: HypergraphBatch, index: int) -> plt.Figure:
    """The incidence matrix H of instance ``index`` (Eq. 1-3) as an annotated heatmap."""
    view = instance_incidence(batch, index)
    fig, ax = plt.subplots(figsize=(1.3 * len(view.edge_types) + 3.5, 0.4 * len(view.slots) + 1.5))
    _heatmap(ax, view.incidence, None, view.node_labels, view.edge_labels, "incidence H (1 = node in hyperedge)")
    fig.tight_layout()
    return fig


def _bipartite(ax: plt.Axes, view: InstanceHypergraph, weights: np.ndarray | None) -> None:
    """Nodes on the left, hyperedges on the right, one line per membership (width = ``weights``)."""
    n_nodes, n_edges = len(view.slots), len(view.edge_types)
    height = max(n_nodes, n_edges)
    node_y = np.linspace(height - 1, 0, n_nodes) if n_nodes > 1 else np.array([height / 2])
    edge_y = np.linspace(height - 1, 0, n_edges) if n_edges > 1 else np.array([height / 2])
    for i, j in zip(*np.nonzero(view.incidence)):
        weight = 1.0 if weights is None else float(weights[i, j])
        ax.plot([0, 1], [node_y[i], edge_y[j]], color=EDGE_COLOURS[view.edge_types[j]],
                linewidth=0.5 + 4.5 * weight, alpha=0.25 + 0.75 * weight, zorder=1)
    ax.scatter(np.zeros(n_nodes), node_y, s=160, zorder=2, edgecolors="black",
               c=[ROLE_STYLES[role][0] for role in view.node_roles])
    for y, name in zip(node_y, view.node_names):
        ax.text(-0.06, y, name, ha="right", va="center", fontsize=9)
    ax.scatter(np.ones(n_edges), edge_y, s=220, marker="s", zorder=2, edgecolors="black",
               c=[EDGE_COLOURS[name] for name in view.edge_types])
    for y, label in zip(edge_y, view.edge_labels):
        ax.text(1.06, y, label, ha="left", va="center", fontsize=9)
    roles_present = list(dict.fromkeys(view.node_roles))
    ax.legend(handles=[Line2D([], [], marker="o", linestyle="", markerfacecolor=ROLE_STYLES[r][0],
                              markeredgecolor="black", label=ROLE_STYLES[r][1]) for r in roles_present],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(roles_present)), fontsize=8,
              frameon=False)
    ax.set_xlim(-0.9, 1.8)
    ax.set_ylim(-0.8, height - 0.2)
    ax.axis("off")


def draw_hypergraph(batch: HypergraphBatch, index: int,
                    attention: Sequence[HypergraphAttention] | None = None, layer: int = 0,
                    head: int = 0, direction: str = "node_from_edges") -> plt.Figure:
    """Bipartite drawing: nodes (left, coloured by role) linked to the hyperedges they belong to (right).

    With ``attention``, each link's width and opacity follow its weight in ``direction``
    (:data:`ATTENTION_DIRECTIONS`) for the given layer and head; without, all links are equal.
    """
    if direction not in ATTENTION_DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; allowed: {', '.join(ATTENTION_DIRECTIONS)}")
    view = instance_incidence(batch, index)
    weights = None if attention is None else attention_matrices(attention, batch, index, layer, head)[direction]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(view.slots), len(view.edge_types)) + 1.8))
    _bipartite(ax, view, weights)
    ax.set_title("hypergraph: nodes -> hyperedges" if weights is None else
                 f"link width = {direction.replace('_', ' ')} attention, layer {layer + 1}, head {head + 1}")
    fig.tight_layout()
    return fig


def draw_hypergraph_attention(batch: HypergraphBatch, index: int,
                              attention: Sequence[HypergraphAttention], layer: int, head: int,
                              title: str = "") -> plt.Figure:
    """One figure for a case study: the hypergraph with links weighted by Eq. 7 attention (left) and
    the node x hyperedge heatmaps of Eq. 5 and Eq. 7 (right; cells outside the incidence blank), for
    one layer and head."""
    view = instance_incidence(batch, index)
    matrices = attention_matrices(attention, batch, index, layer, head)
    member = view.incidence > 0
    rows = max(len(view.slots), len(view.edge_types))
    fig, axes = plt.subplots(1, 3, figsize=(20, 0.42 * rows + 2.8), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    _bipartite(axes[0], view, matrices["node_from_edges"])
    axes[0].set_title("link width = node <- hyperedge attention (Eq. 7)")
    for ax, direction in zip(axes[1:], ATTENTION_DIRECTIONS):
        _heatmap(ax, matrices[direction], member, view.node_labels, view.edge_labels,
                 ATTENTION_DIRECTIONS[direction], "viridis", ".2f")
    fig.suptitle(f"{title}\nV-HAN attention, layer {layer + 1}, head {head + 1}".strip())
    fig.tight_layout()
    return fig


def hyperedge_members(batch: HypergraphBatch, index: int) -> dict[str, list[str]]:
    """``{hyperedge name: names of its nodes}`` of instance ``index`` (empty list: masked hyperedge);
    the names are the types in pair scope."""
    view = instance_incidence(batch, index)
    return {edge: [name for name, member in zip(view.node_names, view.incidence[:, j]) if member]
            for j, edge in enumerate(view.edge_names)}


def draw_edge_switches(
    instance: InstanceNodes, config: HypergraphConfig = HypergraphConfig(),
    switched_off: Sequence[Sequence[str]] = ((), *((name,) for name in EDGE_TYPES), INTRA_MODAL_EDGES, INTER_MODAL_EDGES),
) -> plt.Figure:
    """The incidence of one instance under ``config`` with each group of ``switched_off`` hyperedge
    types removed (:meth:`HypergraphConfig.without_edges`), one panel per group; the first default
    group is empty (all hyperedges), then each type alone, then the intra- and inter-modal pairs."""
    columns = 4
    rows = -(-len(switched_off) // columns)
    batches = [collate_hypergraphs([instance], config.without_edges(*names)) for names in switched_off]
    n_nodes = int(batches[0].node_mask.sum())
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, (0.32 * n_nodes + 1.6) * rows), squeeze=False)
    for ax, names, batch in zip(axes.flat, switched_off, batches):
        view = instance_incidence(batch, 0)
        labels = view.node_labels if ax in axes[:, 0] else [""] * len(view.slots)
        _heatmap(ax, view.incidence, None, labels, view.edge_labels,
                 "all hyperedges" if not names else "w/o " + " + ".join(names))
    for ax in list(axes.flat)[len(switched_off):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def draw_scopes(pair_batch: HypergraphBatch, sentence_batch: HypergraphBatch, index: int = 0) -> plt.Figure:
    """One sentence in both hypergraph scopes: the hypergraph of each of its pairs (``pair_batch``, one
    panel per pair, ``hypergraph.scope = pair``) beside the one hypergraph of the sentence holding all
    of them (graph ``index`` of ``sentence_batch``, ``scope = sentence``)."""
    views = [instance_incidence(pair_batch, b) for b in range(pair_batch.batch_size)]
    views.append(instance_incidence(sentence_batch, index))
    rows = max(max(len(v.slots), len(v.edge_types)) for v in views)
    fig, axes = plt.subplots(1, len(views), figsize=(7.5 * len(views), 0.45 * rows + 2.2), squeeze=False)
    for b, (ax, view) in enumerate(zip(axes[0], views)):
        _bipartite(ax, view, None)
        ax.set_title(f"pair scope: pair {b + 1}" if b < len(views) - 1 else
                     f"sentence scope: {len(views) - 1} pairs, one hypergraph")
    fig.tight_layout()
    return fig
