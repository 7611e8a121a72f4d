r"""One layer of the variational hypergraph attention network (V-HAN), paper Eq. 5-8.

Symbols (per instance; the batch dimension B is implicit in the equations):
    x_{i,mu}, x_{i,sigma} in R^d   mean and variance of node v_i (layer l),
    e_{j,mu}, e_{j,sigma} in R^d   mean and variance of hyperedge e_j (layer l),
    H in {0,1}^{N x E}             incidence, H_ij = 1 iff v_i in e_j,
    W_e, W_x in R^{d x d}          attention projections (shared by Eq. 5 and Eq. 7),
    W_{e,mu}, W_{e,sigma}, W_{x,mu}, W_{x,sigma} in R^{d x d}   update maps,
    K heads of width d_k = d / K; superscript (k) = the k-th d_k-slice of a vector.

Hyperedge <- nodes (Eq. 5-6), for every head k and every v_i in e_j:

    alpha_{j,i}^{(k)} = softmax_{v_i in e_j} ( (W_e e_{j,mu})^{(k)} . (W_x x_{i,mu})^{(k)} / sqrt(d_k) )   (Eq. 5)
    a_{j,mu}^{(k)}    = sum_{v_i in e_j} alpha_{j,i}^{(k)}   x_{i,mu}^{(k)}
    a_{j,sigma}^{(k)} = sum_{v_i in e_j} (alpha_{j,i}^{(k)})^2 x_{i,sigma}^{(k)}
    e'_{j,mu}    = ELU(W_{e,mu} a_{j,mu} + b)           + e_{j,mu}                               (Eq. 6)
    e'_{j,sigma} = softplus(W_{e,sigma} a_{j,sigma} + b) + e_{j,sigma}                           (Eq. 6)

Node <- hyperedges (Eq. 7-8), for every head k and every e_j containing v_i:

    alpha_{i,j}^{(k)} = softmax_{e_j ni v_i} ( (W_x x_{i,mu})^{(k)} . (W_e e'_{j,mu})^{(k)} / sqrt(d_k) )  (Eq. 7)
    x'_{i,mu}    = ELU(W_{x,mu} sum_j alpha_{i,j} e'_{j,mu} + b)             + x_{i,mu}          (Eq. 8)
    x'_{i,sigma} = softplus(W_{x,sigma} sum_j alpha_{i,j}^2 e'_{j,sigma} + b) + x_{i,sigma}       (Eq. 8)

Choices where the paper is loose:
- sigma(.) of Eq. 6/8 is ELU on the mean path and softplus on the variance path, so variances stay
  strictly positive (positive residual + positive increment); the variance path uses alpha^2, the
  variance of a weighted sum of independent Gaussians.
- the value of a node in head k is its own k-th slice (Eq. 6 applies W_{e,mu} after the weighted
  sum, so there is no separate value projection); the scale is sqrt(d_k), d_k the head width.
- the node update (Eq. 7-8) reads the hyperedge states e' just computed by Eq. 6 in the same
  layer (the usual two-stage node -> edge -> node message passing); the literal superscript (l)
  of Eq. 7-8 would let node information reach other nodes only one layer later.
- a hyperedge with no node (masked) and a node in no hyperedge (padding) receive no update.

With ``variational=False`` the sigma path does not exist (the "w/o Variational Representation"
ablation): only the mean equations run, on deterministic vectors.

Tensor shapes: nodes ``[B, N, d]``, hyperedges ``[B, E, d]``, incidence ``[B, N, E]``,
attention ``[B, K, E, N]`` (edge <- nodes) and ``[B, K, N, E]`` (node <- edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vmhan_lib.model.functional import masked_softmax, merge_heads, split_heads


@dataclass
class HypergraphAttention:
    """Attention weights of one V-HAN layer, for case studies.

    Attributes:
        edge_from_nodes: ``[B, K, E, N]`` alpha_{j,i} of Eq. 5; sums to 1 over the nodes of each
            non-empty hyperedge, 0 outside it.
        node_from_edges: ``[B, K, N, E]`` alpha_{i,j} of Eq. 7; sums to 1 over the hyperedges of
            each node that has any, 0 elsewhere.
        incidence: ``[B, N, E]`` the mask both were computed under.
    """

    edge_from_nodes: torch.Tensor
    node_from_edges: torch.Tensor
    incidence: torch.Tensor


@dataclass
class VHANState:
    """Node and hyperedge Gaussians between layers (``*_sigma`` None when deterministic)."""

    node_mu: torch.Tensor
    node_sigma: torch.Tensor | None
    edge_mu: torch.Tensor
    edge_sigma: torch.Tensor | None


def initial_edge_state(
    node_mu: torch.Tensor, node_sigma: torch.Tensor | None, incidence: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """e^{(0)}: the mean of the (mu, sigma) of each hyperedge's nodes; empty hyperedges are 0.

    ``node_* [B, N, d]``, ``incidence [B, N, E]`` -> ``[B, E, d]`` each.
    """
    edge_size = incidence.sum(dim=1).clamp(min=1).unsqueeze(-1)  # [B, E, 1]
    members = incidence.transpose(1, 2)  # [B, E, N]
    edge_mu = torch.bmm(members, node_mu) / edge_size
    edge_sigma = None if node_sigma is None else torch.bmm(members, node_sigma) / edge_size
    return edge_mu, edge_sigma


class VHANLayer(nn.Module):
    """Eq. 5-8: hyperedges attend to their nodes, then nodes attend to their hyperedges."""

    def __init__(self, hidden: int, heads: int, variational: bool = True) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
        self.heads = heads
        self.head_width = hidden // heads
        self.edge_attention = nn.Linear(hidden, hidden, bias=False)  # W_e
        self.node_attention = nn.Linear(hidden, hidden, bias=False)  # W_x
        self.edge_mean = nn.Linear(hidden, hidden)  # W_{e,mu}
        self.node_mean = nn.Linear(hidden, hidden)  # W_{x,mu}
        self.edge_variance = nn.Linear(hidden, hidden) if variational else None  # W_{e,sigma}
        self.node_variance = nn.Linear(hidden, hidden) if variational else None  # W_{x,sigma}

    @property
    def variational(self) -> bool:
        return self.edge_variance is not None

    def _scores(self, node_keys: torch.Tensor, edge_mu: torch.Tensor) -> torch.Tensor:
        """(W_e e_j)^{(k)} . (W_x x_i)^{(k)} / sqrt(d_k) for all (j, i): ``[B, K, E, N]``.

        ``node_keys`` = W_x x_mu split into heads, ``[B, N, K, d_k]`` (shared by Eq. 5 and Eq. 7).
        """
        edge_keys = split_heads(self.edge_attention(edge_mu), self.heads)  # [B, E, K, d_k]
        return torch.einsum("bekc,bnkc->bken", edge_keys, node_keys) / math.sqrt(self.head_width)

    @staticmethod
    def _aggregate(weights: torch.Tensor, values: torch.Tensor, heads: int) -> torch.Tensor:
        """sum_s weights[b, k, t, s] * values[b, s, k-th slice] -> ``[B, T, d]``; weights ``[B, K, T, S]``."""
        per_head = split_heads(values, heads)  # [B, S, K, d_k]
        return merge_heads(torch.einsum("bkts,bskc->btkc", weights, per_head))  # [B, T, d]

    def forward(
        self, state: VHANState, incidence: torch.Tensor, return_attention: bool = False
    ) -> tuple[VHANState, HypergraphAttention | None]:
        """One layer: ``state`` at layer l -> state at layer l + 1 (and the attention if asked)."""
        if (state.node_sigma is None) == self.variational:
            raise ValueError("node_sigma must be given iff the layer is variational")
        edge_members = incidence.transpose(1, 2).unsqueeze(1).bool()  # [B, 1, E, N]
        node_members = incidence.unsqueeze(1).bool()  # [B, 1, N, E]
        edge_has_node = (incidence.sum(dim=1) > 0).unsqueeze(-1)  # [B, E, 1]
        node_has_edge = (incidence.sum(dim=2) > 0).unsqueeze(-1)  # [B, N, 1]
        node_keys = split_heads(self.node_attention(state.node_mu), self.heads)  # W_x x_mu: [B, N, K, d_k]

        # Eq. 5-6: hyperedge <- nodes, softmax over the nodes of each hyperedge (last axis).
        alpha_edge = masked_softmax(self._scores(node_keys, state.edge_mu), edge_members, dim=-1)  # [B, K, E, N]
        edge_update = F.elu(self.edge_mean(self._aggregate(alpha_edge, state.node_mu, self.heads)))
        edge_mu = state.edge_mu + edge_update * edge_has_node
        edge_sigma = None
        if self.edge_variance is not None:
            variance_sum = self._aggregate(alpha_edge.square(), state.node_sigma, self.heads)
            edge_sigma = state.edge_sigma + F.softplus(self.edge_variance(variance_sum)) * edge_has_node

        # Eq. 7-8: node <- hyperedges, softmax over the hyperedges of each node (last axis).
        scores = self._scores(node_keys, edge_mu).transpose(-1, -2)  # [B, K, N, E]
        alpha_node = masked_softmax(scores, node_members, dim=-1)  # [B, K, N, E]
        node_update = F.elu(self.node_mean(self._aggregate(alpha_node, edge_mu, self.heads)))
        node_mu = state.node_mu + node_update * node_has_edge
        node_sigma = None
        if self.node_variance is not None:
            variance_sum = self._aggregate(alpha_node.square(), edge_sigma, self.heads)
            node_sigma = state.node_sigma + F.softplus(self.node_variance(variance_sum)) * node_has_edge

        attention = HypergraphAttention(alpha_edge, alpha_node, incidence) if return_attention else None
        return VHANState(node_mu, node_sigma, edge_mu, edge_sigma), attention
