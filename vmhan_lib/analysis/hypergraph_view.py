"""Pictures of one instance's multi-modal hypergraph (Eq. 1-3) and of its V-HAN attention (Eq. 5, 7).

Each ``draw_*`` function takes a :class:`~vmhan_lib.hypergraph.batch.HypergraphBatch` and the
position of one instance in it (:func:`draw_edge_switches`: the instance's nodes), keeps that
instance's real nodes only (padded slots are dropped) and returns a matplotlib figure: the bipartite
hypergraph (:func:`draw_hypergraph`), its incidence (:func:`draw_incidence`), both attention
directions beside the hypergraph for case studies (:func:`draw_hypergraph_attention`), the incidence
under the hyperedge switch-offs of Table 2 (:func:`draw_edge_switches`). The matrices drawn come from
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
        edge_types: the incidence columns.
        incidence: ``[n_real, E]`` 0/1.
        edge_present: ``[E]`` whether the hyperedge has any node in this instance.
    """

    slots: tuple[int, ...]
    node_names: tuple[str, ...]
    node_roles: tuple[NodeRole, ...]
    edge_types: tuple[str, ...]
    incidence: np.ndarray
    edge_present: np.ndarray

    @property
    def node_labels(self) -> list[str]:
        """``name (role)`` for every real node, e.g. ``Obama (head v_h)``."""
        return [f"{name} ({ROLE_STYLES[role][1]})" for name, role in zip(self.node_names, self.node_roles)]

    @property
    def edge_labels(self) -> list[str]:
        """Hyperedge type names; a hyperedge with no node in this instance is marked ``(empty)``."""
        return [name if present else f"{name} (empty)" for name, present in zip(self.edge_types, self.edge_present)]


def instance_incidence(batch: HypergraphBatch, index: int) -> InstanceHypergraph:
    """The real nodes, their roles and the incidence of instance ``index`` of ``batch``."""
    if not 0 <= index < batch.batch_size:
        raise IndexError(f"instance {index} outside a batch of {batch.batch_size}")
    slots = tuple(int(s) for s in batch.node_mask[index].nonzero().flatten().tolist())
    return InstanceHypergraph(slots=slots, node_names=tuple(batch.node_names[index][s] for s in slots),
                              node_roles=tuple(NodeRole(int(batch.node_role[index, s])) for s in slots),
                              edge_types=tuple(batch.edge_types),
                              incidence=batch.incidence[index, list(slots)].detach().cpu().numpy(),
                              edge_present=batch.edge_mask[index].detach().cpu().numpy())


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
    slots = list(instance_incidence(batch, index).slots)
    edge_from_nodes = weights.edge_from_nodes[index, head].detach().cpu().numpy()  # [E, N]
    node_from_edges = weights.node_from_edges[index, head].detach().cpu().numpy()  # [N, E]
    return {"edge_from_nodes": edge_from_nodes[:, slots].T, "node_from_edges": node_from_edges[slots]}


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
    """``{hyperedge type: names of its nodes}`` of instance ``index`` (empty list: masked hyperedge)."""
    view = instance_incidence(batch, index)
    return {edge: [name for name, member in zip(view.node_names, view.incidence[:, j]) if member]
            for j, edge in enumerate(view.edge_types)}


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
