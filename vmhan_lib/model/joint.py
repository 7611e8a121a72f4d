r"""The text encoder and a hypergraph model as one network, trained end to end (``joint`` training).

The paper trains BERT, V-HAN and the classifier together under one loss (section 4.3):

    L(theta_enc, theta_graph) = lambda_c L_c + lambda_rec L_rec + lambda_KL L_KL        (Eq. 12)

with L_c the cross-entropy of the Eq. 9 classifier on [x_h,mu; x_h,sigma; x_t,mu; x_t,sigma],
L_rec (Eq. 10, targets = the layer-0 Gaussians, detached) and L_KL (Eq. 11). In ``two-stage``
training the text node features x are constants read from a cache; here they are functions of the
encoder weights theta_enc, computed for every batch, so dL/dtheta_enc flows through Eq. 4's
projections of the text nodes:

    H = Enc_theta(marked sentence)                          [B, L, d_text]
    x_h = H[b, pos_@],  x_t = H[b, pos_#]                   [B, 2, d_text]   (entity start markers)
    x_m = mean_{l in span_m} H[b, l]                        [B, M, d_text]   (text-LLM nodes)

the same read-outs as the frozen features (:func:`~vmhan_lib.data.markers.gather_positions`,
:func:`~vmhan_lib.data.markers.span_means`). Visual nodes stay as built (cached caption
embeddings): the image side has no trainable encoder here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from vmhan_lib.data.markers import TokenizedBatch
from vmhan_lib.hypergraph.batch import HypergraphBatch
from vmhan_lib.model.text_encoder import EntityMarkerEncoder
from vmhan_lib.model.vmhan import VMHAN, ModelOutput


@dataclass
class JointBatch:
    """One batch of ``joint`` training: the marked sentences and the hypergraphs of the same
    instances, row b of both = instance b.

    Attributes:
        tokens: the encoder input; ``phrase_spans`` / ``phrase_mask`` ``[B, M, 2]`` / ``[B, M]`` hold
            the text-LLM node spans in the order of the hypergraph's text slots 2..
        graphs: the hypergraphs; their ``text_features`` are placeholders (replaced by the live
            encoder's), their visual features and structure are used as they are.
    """

    tokens: TokenizedBatch
    graphs: HypergraphBatch

    def to(self, device: torch.device | str) -> "JointBatch":
        return JointBatch(self.tokens.to(device), self.graphs.to(device))


class JointModel(nn.Module):
    """:class:`EntityMarkerEncoder` -> live text node features -> :class:`VMHAN` (any variant).

    ``encoder`` and ``graph`` are the two parameter groups of the optimiser: the pretrained
    encoder (small learning rate) and the freshly initialised Eq. 4-9 network.
    """

    def __init__(self, encoder: EntityMarkerEncoder, graph: VMHAN) -> None:
        super().__init__()
        if graph.config.d_text != encoder.hidden_size:
            raise ValueError(f"the model reads {graph.config.d_text}-wide text features but the encoder is "
                             f"{encoder.hidden_size} wide; size the model with the encoder's width")
        self.encoder = encoder
        self.graph = graph

    def text_features(self, batch: JointBatch) -> torch.Tensor:
        """The text node features ``[B, N_t, d_text]`` of ``batch.graphs`` from the live encoder: slot
        0 = head start marker, 1 = tail start marker, 2.. = mean state over each text-LLM span
        (zeros on padded slots, as the collated hypergraph has).

        Raises:
            ValueError: the spans do not fill the hypergraph's text slots (the two were not built
                from the same instances and phrases).
        """
        encoded = self.encoder.encode(batch.tokens)  # entities [B, 2, d], phrases [B, M, d]
        n_phrase_slots = batch.graphs.num_text_slots - 2
        if encoded.phrases.shape[1] < n_phrase_slots:
            raise ValueError(f"{encoded.phrases.shape[1]} phrase spans for {n_phrase_slots} text-LLM slots")
        features = torch.cat([encoded.entities, encoded.phrases[:, :n_phrase_slots]], dim=1)  # [B, N_t, d]
        if features.shape != batch.graphs.text_features.shape:
            raise ValueError(f"live text features {tuple(features.shape)} do not fit the hypergraph's "
                             f"{tuple(batch.graphs.text_features.shape)}")
        return features

    def forward(self, batch: JointBatch, return_attention: bool = False) -> ModelOutput:
        """The graph model's output on the hypergraphs with the live text features."""
        graphs = replace(batch.graphs, text_features=self.text_features(batch))
        return self.graph(graphs, return_attention=return_attention)
