r"""Multi-head GAT (Velickovic et al., 2018) on the clique expansion, the "repl. GAT" baseline.

For head k (K heads of width d_k = d / K) and neighbours j of i in the clique expansion with self
loops (:func:`vmhan_lib.hypergraph.structure.clique_expansion`):

    h_i^{(k)}       = W^{(k)} x_i
    s_ij^{(k)}      = LeakyReLU_{0.2}( a_src^{(k)} . h_i^{(k)} + a_dst^{(k)} . h_j^{(k)} )
    alpha_ij^{(k)}  = softmax_{j in N(i)} s_ij^{(k)}
    x'_i            = x_i + ELU( ||_k sum_{j in N(i)} alpha_ij^{(k)} h_j^{(k)} )

(|| = concatenation of the heads). The residual and ELU match V-HAN's Eq. 8; padded slots have
no neighbour and receive no update.

Shapes: x ``[B, N, d]``, adjacency ``[B, N, N]`` bool, attention ``[B, K, N, N]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vmhan_lib.model.functional import masked_softmax, merge_heads, split_heads


class GATLayer(nn.Module):
    """Multi-head graph attention with concatenated heads and a residual."""

    def __init__(self, hidden: int, heads: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
        self.heads = heads
        self.negative_slope = negative_slope
        self.projection = nn.Linear(hidden, hidden, bias=False)  # W, all heads
        self.attention_source = nn.Parameter(torch.empty(heads, hidden // heads))  # a_src
        self.attention_target = nn.Parameter(torch.empty(heads, hidden // heads))  # a_dst
        nn.init.xavier_uniform_(self.attention_source)
        nn.init.xavier_uniform_(self.attention_target)

    def attention(self, x: torch.Tensor, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(alpha [B, K, N, N], h [B, N, K, d_k])``."""
        h = split_heads(self.projection(x), self.heads)  # [B, N, K, d_k]
        source = torch.einsum("bnkc,kc->bkn", h, self.attention_source)  # [B, K, N]
        target = torch.einsum("bnkc,kc->bkn", h, self.attention_target)  # [B, K, N]
        scores = F.leaky_relu(source.unsqueeze(-1) + target.unsqueeze(-2), self.negative_slope)  # [B, K, N, N]
        return masked_softmax(scores, adjacency.unsqueeze(1), dim=-1), h

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        alpha, h = self.attention(x, adjacency)
        messages = merge_heads(torch.einsum("bkij,bjkc->bikc", alpha, h))  # [B, N, d]
        has_neighbour = adjacency.any(dim=-1).unsqueeze(-1)  # [B, N, 1]
        return x + F.elu(messages) * has_neighbour
