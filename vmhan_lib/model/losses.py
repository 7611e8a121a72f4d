r"""Joint optimisation objective, paper Eq. 9-12.

Over the n real nodes of the batch (padded slots excluded), with x_{i,sigma} a variance:

    L_c   = -(1/B) sum_b log p(r*_b | x_h, x_t)                                        (Eq. 9)
    L_rec = (1/n) sum_i ( ||x^{(0)}_{i,mu} - x_{i,mu}||^2 + ||x^{(0)}_{i,sigma} - x_{i,sigma}||^2 )   (Eq. 10)
    L_KL  = (1/n) sum_i KL( N(x_{i,mu}, diag x_{i,sigma}) || N(0, I) )
          = (1/n) sum_i (1/2) sum_d ( x_{i,sigma} + x_{i,mu}^2 - 1 - log x_{i,sigma} )           (Eq. 11)
    L     = lambda_c L_c + lambda_rec L_rec + lambda_KL L_KL                                   (Eq. 12)

Eq. 10's "true" vectors x_{i,h}, x_{i,tau} are read as the layer-0 (Eq. 4) mean and variance of
the node: the encoder's final Gaussian is pulled back toward the node's own initial Gaussian. The
targets are detached (no gradient flows into the target side). KL and reconstruction exist only
for variational models; a term whose weight is 0 is left out of the loss and of the returned parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.vmhan import ModelOutput


def _mean_over_real_nodes(per_node: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_node [B, N]`` over the real nodes."""
    weights = node_mask.to(per_node.dtype)
    return (per_node * weights).sum() / weights.sum().clamp(min=1.0)


def reconstruction_loss(output: ModelOutput) -> torch.Tensor:
    """Eq. 10: squared distance of the final (mu, sigma) to the detached layer-0 (mu, sigma)."""
    if output.node_sigma is None or output.initial_sigma is None:
        raise ValueError("the reconstruction loss needs a variational model (node_sigma is None)")
    mean_error = (output.node_mu - output.initial_mu.detach()).square().sum(dim=-1)  # [B, N]
    variance_error = (output.node_sigma - output.initial_sigma.detach()).square().sum(dim=-1)  # [B, N]
    return _mean_over_real_nodes(mean_error + variance_error, output.node_mask)


def kl_loss(output: ModelOutput) -> torch.Tensor:
    """Eq. 11: KL of each real node's final diagonal Gaussian to N(0, I), averaged over nodes."""
    if output.node_sigma is None:
        raise ValueError("the KL loss needs a variational model (node_sigma is None)")
    mu, variance = output.node_mu, output.node_sigma
    per_node = 0.5 * (variance + mu.square() - 1.0 - variance.log()).sum(dim=-1)  # [B, N]
    return _mean_over_real_nodes(per_node, output.node_mask)


def vmhan_loss(output: ModelOutput, labels: torch.Tensor, config: ModelConfig) -> dict[str, torch.Tensor]:
    """Eq. 12. Returns the parts that enter the loss and their weighted sum.

    Keys: ``"classification"`` always; ``"reconstruction"`` and ``"kl"`` for variational models
    with a positive weight; ``"total"`` = lambda-weighted sum of the parts present.
    """
    parts = {"classification": F.cross_entropy(output.logits, labels)}
    weights = {"classification": config.lambda_c}
    if output.node_sigma is not None:
        if config.lambda_rec > 0:
            parts["reconstruction"] = reconstruction_loss(output)
            weights["reconstruction"] = config.lambda_rec
        if config.lambda_kl > 0:
            parts["kl"] = kl_loss(output)
            weights["kl"] = config.lambda_kl
    parts["total"] = sum(weights[name] * parts[name] for name in weights)
    return parts
