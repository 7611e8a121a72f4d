r"""The late-fusion baseline of the controlled visual-signal study (issue 24): Text-only's classifier
reading the head, the tail and the mean of the visual nodes, with no graph.

No row of Table 1 or 2 is one: "w/o V-HAN" and "Text-only" read no visual node at all, and
"w/o Multi-Modal Hypergraph" keeps V-HAN but no visual information can reach the head or tail.
With the per-modality projection of Eq. 4 (deterministic, as Text-only):

    x_i     = W_mu LayerNorm(P_{m(i)} x_i + b_{m(i)}) + b_mu                   (Eq. 4, no sigma)
    \bar v  = (1 / |V|) \sum_{i in V} x_i        (V: the instance's visual nodes; 0 when it has none)
    p(r | .) = softmax( W_c Dropout([x_h; x_t; \bar v]) + b_c )     (Eq. 9 on [P, 3d], one row per pair)

The loss is L_c only (deterministic). Built by :func:`vmhan_lib.model.vmhan.build_model` for
``encoder = "late-fusion"`` (the variant ``"Late fusion"`` of :mod:`vmhan_lib.model.variants`).
"""

from __future__ import annotations

import torch
from torch import nn

from vmhan_lib.hypergraph.batch import HypergraphBatch
from vmhan_lib.model.classifier import ModelOutput, RelationClassifier
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variational_representation import VariationalRepresentation


def visual_mean(node_mu: torch.Tensor, node_mask: torch.Tensor, n_text: int) -> torch.Tensor:
    """``[B, d]``: the mean of each instance's real visual nodes (slots ``n_text:`` of ``node_mu``
    ``[B, N, d]``), a zero vector for an instance without any."""
    real = node_mask[:, n_text:].unsqueeze(-1).to(node_mu.dtype)  # [B, N_v, 1]
    total = (node_mu[:, n_text:] * real).sum(dim=1)  # [B, d]
    return total / real.sum(dim=1).clamp(min=1.0)  # [B, d] / [B, 1]


class LateFusion(nn.Module):
    """Eq. 4 projection (deterministic) -> [x_h; x_t; mean of the visual nodes] -> Eq. 9 classifier."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.representation = VariationalRepresentation(config.d_text, config.d_visual, config.hidden,
                                                        variational=False)
        self.classifier = RelationClassifier(3 * config.hidden, config.num_relations, config.dropout)

    def forward(self, batch: HypergraphBatch, return_attention: bool = False) -> ModelOutput:
        """Logits of ``batch``; ``return_attention`` is accepted for the common interface (no attention)."""
        if batch.edge_types != self.config.hypergraph.edge_types:
            raise ValueError(f"batch has hyperedges {batch.edge_types} but the model expects "
                             f"{self.config.hypergraph.edge_types}: collate with the model's config.hypergraph")
        mu, _ = self.representation(batch.text_features, batch.visual_features, batch.node_mask,
                                    batch.tail_source)  # [B, N, d]
        pooled = visual_mean(mu, batch.node_mask, batch.text_features.shape[1])  # [B, d]
        graph, head, tail = batch.pair_index.unbind(dim=1)  # [P] each: P = B, slots 0 and 1, in pair scope
        pair = torch.cat([mu[graph, head], mu[graph, tail], pooled[graph]], dim=-1)  # [P, 3d]
        return ModelOutput(logits=self.classifier(pair), node_mu=mu, node_sigma=None, initial_mu=mu,
                           initial_sigma=None, node_mask=batch.node_mask, pair_index=batch.pair_index)
