r"""The VM-HAN model (paper section 4) and its baselines behind one class, and :func:`build_model`.

Forward pass on a :class:`~vmhan_lib.hypergraph.batch.HypergraphBatch`:

1. Eq. 4, :class:`VariationalRepresentation`: raw text / visual features -> (x_mu, x_sigma) ``[B, N, d]``.
2. L encoder layers over the hypergraph, chosen by ``config.encoder``:
   ``vhan`` (Eq. 5-8, hyperedge states start as the mean of their nodes), ``hgnn``, ``gcn``,
   ``gat`` (deterministic), ``vgcn`` (variational), or ``none`` (Eq. 4 straight to step 3).
3. Eq. 9, :class:`RelationClassifier` on the head and tail nodes of every pair of
   ``batch.pair_index`` ``[P, 3]``: slots 0 and 1 of each graph in pair scope; in sentence scope
   (:mod:`vmhan_lib.hypergraph.sentence`) every pair of each sentence's graph, after the shared layers.

The losses of Eq. 10-12 are in :mod:`vmhan_lib.model.losses` and read the :class:`ModelOutput`.
No Python loop runs over the graphs of the batch: every step is a batched tensor operation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vmhan_lib.hypergraph.batch import HypergraphBatch
from vmhan_lib.hypergraph.structure import clique_expansion
from vmhan_lib.model.classifier import ModelOutput, RelationClassifier, entity_pair_features
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.gat_layer import GATLayer
from vmhan_lib.model.gcn_layer import GCNLayer, gcn_operator
from vmhan_lib.model.late_fusion import LateFusion
from vmhan_lib.model.hgnn_layer import HGNNLayer, hgnn_operator
from vmhan_lib.model.variational_gcn_layer import VariationalGCNLayer
from vmhan_lib.model.variational_representation import VariationalRepresentation
from vmhan_lib.model.vhan_layer import HypergraphAttention, VHANLayer, VHANState, initial_edge_state


GRAPH_OPERATORS: dict[str, Callable[[HypergraphBatch], torch.Tensor]] = {
    "hgnn": lambda batch: hgnn_operator(batch.incidence),
    "gcn": lambda batch: gcn_operator(batch.incidence, batch.node_mask),
    "vgcn": lambda batch: gcn_operator(batch.incidence, batch.node_mask),
    "gat": lambda batch: clique_expansion(batch.incidence, batch.node_mask),
}
"""The propagation structure each graph baseline reads: HGNN operator, \\hat A, or the adjacency."""


def _encoder_layers(config: ModelConfig) -> nn.ModuleList:
    """The L layers of ``config.encoder`` (empty for ``none``)."""
    make = {
        "vhan": lambda: VHANLayer(config.hidden, config.heads, variational=config.variational),
        "hgnn": lambda: HGNNLayer(config.hidden),
        "gcn": lambda: GCNLayer(config.hidden),
        "gat": lambda: GATLayer(config.hidden, config.heads),
        "vgcn": lambda: VariationalGCNLayer(config.hidden),
    }
    if config.encoder == "none":
        return nn.ModuleList()
    return nn.ModuleList(make[config.encoder]() for _ in range(config.num_layers))


class VMHAN(nn.Module):
    """Eq. 4 representation -> L hypergraph encoder layers -> Eq. 9 classifier."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.representation = VariationalRepresentation(
            config.d_text, config.d_visual, config.hidden, variational=config.variational
        )
        self.layers = _encoder_layers(config)
        pair_width = (4 if config.variational else 2) * config.hidden
        self.classifier = RelationClassifier(pair_width, config.num_relations, config.dropout)

    def _encode(
        self, mu: torch.Tensor, sigma: torch.Tensor | None, batch: HypergraphBatch, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[HypergraphAttention] | None]:
        """Run the encoder layers; returns final (mu, sigma) and, for V-HAN, the attention if asked."""
        encoder = self.config.encoder
        if not self.layers:
            return mu, sigma, None
        if encoder == "vhan":
            state = VHANState(mu, sigma, *initial_edge_state(mu, sigma, batch.incidence))
            attention = []
            for layer in self.layers:
                state, weights = layer(state, batch.incidence, return_attention=return_attention)
                attention.append(weights)
            return state.node_mu, state.node_sigma, attention if return_attention else None
        operator = GRAPH_OPERATORS[encoder](batch)  # [B, N, N], computed once for all layers
        for layer in self.layers:
            if encoder == "vgcn":
                mu, sigma = layer(mu, sigma, operator)
            else:
                mu = layer(mu, operator)
        return mu, sigma, None

    def forward(self, batch: HypergraphBatch, return_attention: bool = False) -> ModelOutput:
        """Logits and node states of ``batch`` (collated with ``config.hypergraph``)."""
        if batch.edge_types != self.config.hypergraph.edge_types:
            raise ValueError(
                f"batch has hyperedges {batch.edge_types} but the model expects "
                f"{self.config.hypergraph.edge_types}: collate with the model's config.hypergraph"
            )
        initial_mu, initial_sigma = self.representation(
            batch.text_features, batch.visual_features, batch.node_mask, batch.tail_source
        )  # [B, N, d] each
        mu, sigma, attention = self._encode(initial_mu, initial_sigma, batch, return_attention)
        pair_index = batch.pair_index  # [P, 3]
        graph, head, tail = pair_index.unbind(dim=1)  # [P] each
        pair = entity_pair_features(
            mu[graph, head],
            None if sigma is None else sigma[graph, head],
            mu[graph, tail],
            None if sigma is None else sigma[graph, tail],
            sample=self.training,  # reparameterised z = mu + sqrt(sigma) * eps in training, the means in evaluation
        )  # [P, 4d] or [P, 2d]
        return ModelOutput(
            logits=self.classifier(pair),
            node_mu=mu,
            node_sigma=sigma,
            initial_mu=initial_mu,
            initial_sigma=initial_sigma,
            node_mask=batch.node_mask,
            attention=attention,
            pair_index=pair_index,
        )


def build_model(config: ModelConfig) -> VMHAN:
    """The model that ``config`` describes (see :data:`vmhan_lib.model.variants.VARIANTS` for named ones).

    Raises:
        ValueError: the config is not sized to its data yet (see :meth:`ModelConfig.sized`).
    """
    if not config.is_sized:
        raise ValueError("model config has no input widths / class count yet; call config.sized(d_text, d_visual, "
                         "num_relations) with those of the features")
    if config.encoder == "late-fusion":
        return LateFusion(config)  # type: ignore[return-value]  # the same interface, no graph
    return VMHAN(config)
