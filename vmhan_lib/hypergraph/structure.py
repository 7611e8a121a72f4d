"""Graphs derived from the incidence H, for the graph baselines (GCN, GAT, variational GCN).

Clique expansion: two nodes are adjacent when they share a hyperedge,

    A = [H H^T > 0]  (off the diagonal),   A + I  on real nodes,

so a hyperedge of size s becomes an s-clique. Padded slots get no self loop and no neighbour.
"""

from __future__ import annotations

import torch


def clique_expansion(incidence: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
    """Adjacency with self loops ``[B, N, N]`` (bool) of the clique expansion of ``incidence`` ``[B, N, E]``."""
    shares_edge = torch.bmm(incidence, incidence.transpose(1, 2)) > 0  # [B, N, N]
    self_loops = torch.diag_embed(node_mask)  # [B, N, N], True on real nodes' diagonal
    return shares_edge | self_loops


def symmetric_normalisation(adjacency: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """D^-1/2 A D^-1/2 ``[B, N, N]`` (of ``dtype``) for a 0/1 adjacency ``[B, N, N]``; rows of isolated slots stay 0."""
    weights = adjacency.to(dtype)
    degree = weights.sum(dim=-1)  # [B, N]
    inv_sqrt = torch.where(degree > 0, degree.clamp(min=1e-12).rsqrt(), torch.zeros_like(degree))
    return inv_sqrt.unsqueeze(-1) * weights * inv_sqrt.unsqueeze(-2)
