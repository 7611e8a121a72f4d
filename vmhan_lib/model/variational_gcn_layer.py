r"""Variational GCN on the clique expansion, the "repl. Variational GCN" baseline.

Gaussian nodes N(mu_i, diag(sigma_i)) propagated as in the variance-based GCN of Zhu et al.
(2019): the means with \hat A, the variances with \hat A squared elementwise (the variance of a
weighted sum of independent Gaussians),

    mu'    = mu    + ELU( \hat A mu Theta_mu + b_mu )
    sigma' = sigma + softplus( (\hat A o \hat A) sigma Theta_sigma + b_sigma )

\hat A = \tilde D^{-1/2}(A + I)\tilde D^{-1/2} as in :mod:`vmhan_lib.model.gcn_layer`; sigma are
variances, kept positive by the softplus increment on a positive residual. Padded slots (no
neighbour, zero rows of \hat A) receive no update.

Shapes: mu, sigma ``[B, N, d]``, \hat A ``[B, N, N]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VariationalGCNLayer(nn.Module):
    """(mu, sigma) -> (mu', sigma') by the equations above."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.theta_mean = nn.Linear(hidden, hidden)
        self.theta_variance = nn.Linear(hidden, hidden)

    def forward(
        self, mu: torch.Tensor, sigma: torch.Tensor, operator: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        has_neighbour = (operator.sum(dim=-1) > 0).unsqueeze(-1)  # [B, N, 1]; False on padded slots
        mean_update = F.elu(self.theta_mean(torch.bmm(operator, mu)))
        variance_update = F.softplus(self.theta_variance(torch.bmm(operator.square(), sigma)))
        return mu + mean_update * has_neighbour, sigma + variance_update * has_neighbour
