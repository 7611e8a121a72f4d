"""The trainable entity-marker text encoder and the text-only relation classifier over it.

:class:`EntityMarkerEncoder` is a BERT-like backbone read at the entity start markers of the
inputs that :class:`vmhan_lib.data.markers.EntityMarkerTokenizer` builds (the marker scheme is
described there). :class:`EncoderClassifier` is the fine-tuned text-only model of stage 1:

    p(r | h, t, T) = softmax(W [dropout(h_h); dropout(h_t)] + b),   W in R^{R x 2d},

for the start-marker states h_h, h_t in R^d of an instance; its loss is cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from vmhan_lib.data.markers import TokenizedBatch, gather_positions, span_means
from vmhan_lib.weights import resolve_text_model


@dataclass
class EncoderOutput:
    """States of one batch: ``entities`` ``[B, 2, d]`` (head, tail start markers), ``phrases``
    ``[B, M, d]`` (mean over each phrase span, zeros where absent) and ``phrase_mask`` ``[B, M]``."""

    entities: torch.Tensor
    phrases: torch.Tensor
    phrase_mask: torch.Tensor


class EntityMarkerEncoder(nn.Module):
    """A BERT-like encoder read at the entity start markers; fine-tunable end to end.

    ``forward`` returns ``[B, 2, d]`` (head, tail); :meth:`encode` also pools phrase spans.
    """

    def __init__(self, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.backbone = backbone

    @classmethod
    def from_pretrained(cls, model: str) -> "EntityMarkerEncoder":
        """Load a fresh (trainable) copy of ``model`` (see :func:`~vmhan_lib.weights.resolve_text_model`)."""
        return cls(AutoModel.from_pretrained(resolve_text_model(model).source))

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states ``[B, L, d]``."""
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, entity_positions: torch.Tensor
    ) -> torch.Tensor:
        return gather_positions(self.states(input_ids, attention_mask), entity_positions)  # [B, 2, d]

    def encode(self, batch: TokenizedBatch) -> EncoderOutput:
        """Entity states and mean-pooled phrase-span states of a :class:`TokenizedBatch`."""
        hidden = self.states(batch.input_ids, batch.attention_mask)
        return EncoderOutput(
            entities=gather_positions(hidden, batch.entity_positions),
            phrases=span_means(hidden, batch.phrase_spans, batch.phrase_mask),
            phrase_mask=batch.phrase_mask,
        )


class EncoderClassifier(nn.Module):
    """Entity-marker encoder + dropout + linear head over [h_h; h_t] (see the module docstring)."""

    def __init__(self, encoder: EntityMarkerEncoder, num_relations: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * encoder.hidden_size, num_relations)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, entity_positions: torch.Tensor) -> torch.Tensor:
        pair = self.encoder(input_ids, attention_mask, entity_positions)  # [B, 2, d]
        return self.head(self.dropout(pair.flatten(1)))  # [B, 2d] -> [B, R]
