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

from dataclasses import dataclass

import torch
from torch import nn

from vmhan_lib.model.vhan_layer import HypergraphAttention


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


@dataclass
class ModelOutput:
    """What the model returns.

    Attributes:
        logits: ``[P, R]`` relation scores (Eq. 9 before the softmax) of the batch's pairs
            (``P = B`` in pair scope).
        node_mu: ``[B, N, d]`` final node means (deterministic vectors without variational representation).
        node_sigma: ``[B, N, d]`` final node variances, or None when deterministic.
        initial_mu: ``[B, N, d]`` layer-0 means (Eq. 4), the reconstruction targets of Eq. 10.
        initial_sigma: ``[B, N, d]`` layer-0 variances, or None.
        node_mask: ``[B, N]`` bool, real nodes.
        attention: per V-HAN layer, the attention weights (only with ``return_attention=True``).
        pair_index: ``[P, 3]`` (graph, head slot, tail slot) of each row of ``logits``.
    """

    logits: torch.Tensor
    node_mu: torch.Tensor
    node_sigma: torch.Tensor | None
    initial_mu: torch.Tensor
    initial_sigma: torch.Tensor | None
    node_mask: torch.Tensor
    attention: list[HypergraphAttention] | None = None
    pair_index: torch.Tensor | None = None
