r"""Relation classifier, paper Eq. 9.

    p(r | x_h, x_t) = softmax( W_c Dropout([x_{h,mu}; x_{h,sigma}; x_{t,mu}; x_{t,sigma}]) + b_c )
    L_c = -log p(r* | ...)                                                            (Eq. 9)

The input is the concatenation of the head's and the tail's mean and variance (``4d``), or of the
two deterministic vectors (``2d``) without variational representation. During training with
sampling on, the means are replaced by reparameterised samples mu + sqrt(sigma) * eps,
eps ~ N(0, I) (sigma is a variance); evaluation always reads the means (deterministic). The
classifier returns logits ``[B, R]``; the softmax lives in the cross-entropy of the loss.
"""

from __future__ import annotations

import torch
from torch import nn


def entity_pair_features(
    head_mu: torch.Tensor,
    head_sigma: torch.Tensor | None,
    tail_mu: torch.Tensor,
    tail_sigma: torch.Tensor | None,
    sample: bool,
) -> torch.Tensor:
    """``[B, 4d]`` = [x_h,mu; x_h,sigma; x_t,mu; x_t,sigma] (or ``[B, 2d]`` = [x_h; x_t] when deterministic).

    With ``sample`` the means are replaced by mu + sqrt(sigma) * eps.
    """
    if head_sigma is None or tail_sigma is None:
        return torch.cat([head_mu, tail_mu], dim=-1)
    if sample:
        head_mu = head_mu + head_sigma.sqrt() * torch.randn_like(head_mu)
        tail_mu = tail_mu + tail_sigma.sqrt() * torch.randn_like(tail_mu)
    return torch.cat([head_mu, head_sigma, tail_mu, tail_sigma], dim=-1)


class RelationClassifier(nn.Module):
    """Dropout then one linear layer, Eq. 9."""

    def __init__(self, in_features: int, num_relations: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, num_relations)

    def forward(self, pair_features: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` -> logits ``[B, R]``."""
        return self.linear(self.dropout(pair_features))
