r"""Variational hypergraph representation, paper Eq. 4.

Each modality's raw node features are first projected to the common width d (our addition: the
paper's text and visual features have different widths, 768 and 4096, and Eq. 4 uses one pair of
matrices for all nodes):

    \bar x_i = LayerNorm(P_{m(i)} x_i + b_{m(i)}),   m(i) in {text, visual}

then every node gets a diagonal Gaussian N(x_{i,mu}, diag(x_{i,sigma})):

    x_{i,mu}^{(0)}    = W_mu \bar x_i + b_mu                                (Eq. 4)
    x_{i,sigma}^{(0)} = softplus(W_sigma \bar x_i + b_sigma) + epsilon     (Eq. 4)

``x_sigma`` is a **variance** (not a standard deviation), kept positive by the softplus
parameterisation with floor ``epsilon = 1e-4`` (so log-variances in the KL stay finite).

With ``variational=False`` (the "w/o Variational Representation" ablation) the module returns only
the deterministic vectors x_i = W_mu \bar x_i + b_mu and no variance.

Shapes: text features ``[B, N_t, d_text]``, visual features ``[B, N_v, d_visual]``, outputs
``[B, N, d]`` with N = N_t + N_v (text slots first). Padded slots hold mu = 0 and sigma = 1
(the prior), so garbage in padded input rows never reaches any output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_VARIANCE = 1e-4


class VariationalRepresentation(nn.Module):
    """Per-modality projection to width ``hidden``, then Eq. 4's mean and variance maps."""

    def __init__(self, d_text: int, d_visual: int, hidden: int, variational: bool = True) -> None:
        super().__init__()
        self.text_projection = nn.Linear(d_text, hidden)
        self.visual_projection = nn.Linear(d_visual, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.to_mean = nn.Linear(hidden, hidden)  # W_mu
        self.to_variance = nn.Linear(hidden, hidden) if variational else None  # W_sigma

    @property
    def variational(self) -> bool:
        return self.to_variance is not None

    def forward(
        self, text_features: torch.Tensor, visual_features: torch.Tensor, node_mask: torch.Tensor,
        tail_source: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(x_mu [B, N, d], x_sigma [B, N, d] or None)``.

        ``tail_source`` ``[B]`` (MORE): the node whose projection the tail slot (node 1) takes, so
        that the tail is its object node, projected by the visual projection; ``None``: unchanged.
        """
        projected = torch.cat(
            [self.text_projection(text_features), self.visual_projection(visual_features)], dim=1
        )  # [B, N_t + N_v, d]
        if tail_source is not None:
            rows = projected[torch.arange(projected.shape[0], device=projected.device), tail_source]  # [B, d]
            is_tail = torch.zeros(projected.shape[:2], dtype=torch.bool, device=projected.device)
            is_tail[:, 1] = True
            projected = torch.where(is_tail.unsqueeze(-1), rows.unsqueeze(1), projected)
        projected = self.norm(projected)
        real = node_mask.unsqueeze(-1)  # [B, N, 1]
        mean = self.to_mean(projected) * real
        if self.to_variance is None:
            return mean, None
        variance = F.softplus(self.to_variance(projected)) + MIN_VARIANCE
        return mean, torch.where(real, variance, torch.ones_like(variance))
