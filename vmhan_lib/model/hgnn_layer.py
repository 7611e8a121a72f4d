r"""HGNN hypergraph convolution (Feng et al., 2019), the "repl. HGNN" / "HGNN" baseline.

    X' = X + ELU( D_v^{-1/2} H W D_e^{-1} H^T D_v^{-1/2} X Theta + b )

Symbols: H ``[N, E]`` incidence, W = I (unit hyperedge weights), D_v = diag(H W 1) node degrees,
D_e = diag(1^T H) hyperedge degrees, Theta ``[d, d]`` learnable. The residual and the ELU match
the form of V-HAN's Eq. 8 so that the replacement changes only the propagation. Padded nodes and
empty hyperedges have degree 0 and contribute nothing (their inverse degrees are set to 0);
a node with no neighbour (padding) receives no update.

Shapes: X ``[B, N, d]``, operator ``[B, N, N]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _safe_inverse(values: torch.Tensor, power: float) -> torch.Tensor:
    """values^{-power} where values > 0, else 0."""
    return torch.where(values > 0, values.clamp(min=1e-12).pow(-power), torch.zeros_like(values))


def hgnn_operator(incidence: torch.Tensor) -> torch.Tensor:
    """D_v^{-1/2} H D_e^{-1} H^T D_v^{-1/2} ``[B, N, N]`` from the incidence ``[B, N, E]`` (W = I)."""
    node_degree = incidence.sum(dim=2)  # [B, N]
    edge_degree = incidence.sum(dim=1)  # [B, E]
    scaled = incidence * _safe_inverse(node_degree, 0.5).unsqueeze(-1)  # D_v^{-1/2} H: [B, N, E]
    return torch.bmm(scaled * _safe_inverse(edge_degree, 1.0).unsqueeze(1), scaled.transpose(1, 2))


class HGNNLayer(nn.Module):
    """X' = X + ELU(P X Theta + b) with P = :func:`hgnn_operator`."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.theta = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, operator: torch.Tensor) -> torch.Tensor:
        has_neighbour = (operator.sum(dim=-1) > 0).unsqueeze(-1)  # [B, N, 1]; False on padded slots
        return x + F.elu(self.theta(torch.bmm(operator, x))) * has_neighbour
