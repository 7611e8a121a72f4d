"""Model configuration (torch-free): widths, depth, encoder type and loss weights.

The paper gives the dropout (0.6) and the text / visual widths of its encoders; it does not give
the hidden width, the number of heads or layers, or the loss weights lambda_c, lambda_rec,
lambda_KL of Eq. 12: the defaults below are our choice, meant to be tuned on dev.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from vmhan_lib.config_tree import DERIVED
from vmhan_lib.hypergraph.config import HypergraphConfig

ENCODERS: tuple[str, ...] = ("vhan", "hgnn", "gcn", "gat", "vgcn", "none", "late-fusion")
"""Node encoders over the hypergraph: V-HAN (Eq. 5-8), HGNN, GCN, GAT, variational GCN, none, or
``late-fusion`` (no graph: the classifier also reads the mean of the visual nodes,
:mod:`vmhan_lib.model.late_fusion`)."""
VARIATIONAL_ENCODERS: tuple[str, ...] = ("vhan", "vgcn", "none")
"""Encoders that carry a variance path (``none`` passes Eq. 4's (mu, sigma) through)."""
DETERMINISTIC_ENCODERS: tuple[str, ...] = ("vhan", "hgnn", "gcn", "gat", "none", "late-fusion")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model.

    Attributes:
        d_text: width of the raw text-node features (384 for all-MiniLM-L6-v2): derived, set by
            :meth:`sized` from the features the model is trained on, never by the user.
        d_visual: width of the raw visual-node features: derived, as ``d_text``.
        hidden: common node width d after the per-modality projection (default 256).
        heads: attention heads of V-HAN / GAT; must divide ``hidden`` (default 4).
        num_layers: stacked encoder layers L (default 2).
        dropout: dropout on the classifier input, Eq. 9 (default 0.6, as the paper).
        num_relations: relation classes including None (23 for MNRE): derived from the data's
            relation vocabulary, as ``d_text``.
        encoder: one of :data:`ENCODERS` (default ``"vhan"``).
        variational: Gaussian node representations (mu, sigma) of Eq. 4 (default True); False =
            deterministic node vectors, no sigma path, no reconstruction / KL loss.
        lambda_c: weight of the classification loss, Eq. 12 (default 1.0).
        lambda_rec: weight of the reconstruction loss, Eq. 10/12 (default 0.1).
        lambda_kl: weight of the KL loss, Eq. 11/12 (default 0.001); 0 removes the term.
        hypergraph: how each instance's hypergraph is built (default: all nodes, all hyperedges, k = 3).
    """

    d_text: int | None = field(default=None, metadata=DERIVED)
    d_visual: int | None = field(default=None, metadata=DERIVED)
    hidden: int = 256
    heads: int = 4
    num_layers: int = 2
    dropout: float = 0.6
    num_relations: int | None = field(default=None, metadata=DERIVED)
    encoder: str = "vhan"
    variational: bool = True
    lambda_c: float = 1.0
    lambda_rec: float = 0.1
    lambda_kl: float = 0.001
    hypergraph: HypergraphConfig = field(default_factory=HypergraphConfig)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; allowed: {', '.join(ENCODERS)}")
        allowed = VARIATIONAL_ENCODERS if self.variational else DETERMINISTIC_ENCODERS
        if self.encoder not in allowed:
            kind = "variational" if self.variational else "deterministic"
            raise ValueError(f"encoder {self.encoder!r} has no {kind} form; {kind} encoders: {', '.join(allowed)}")
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        weights = {"lambda_c": self.lambda_c, "lambda_rec": self.lambda_rec, "lambda_kl": self.lambda_kl}
        for name, weight in weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {weight}")
        sizes = (self.d_text, self.d_visual, self.hidden, self.num_layers, self.num_relations)
        if min(size for size in sizes if size is not None) < 1:
            raise ValueError("widths, num_layers and num_relations must be >= 1")

    @property
    def is_sized(self) -> bool:
        return None not in (self.d_text, self.d_visual, self.num_relations)

    def sized(self, d_text: int, d_visual: int, num_relations: int) -> "ModelConfig":
        """A copy with the input widths and the class count of the data it will see."""
        return replace(self, d_text=d_text, d_visual=d_visual, num_relations=num_relations)

    def with_hypergraph(self, **changes: Any) -> "ModelConfig":
        """A copy whose hypergraph config has ``changes`` applied."""
        return replace(self, hypergraph=replace(self.hypergraph, **changes))
