"""Multi-modal hypergraph construction (paper Eq. 1-3) and batching as padded dense tensors.

Build a batch with :func:`collate_hypergraphs` from a list of
:class:`vmhan_lib.features.nodes.InstanceNodes` and a :class:`HypergraphConfig`.
"""

from vmhan_lib.hypergraph.batch import HEAD_SLOT, TAIL_SLOT, HypergraphBatch, collate_hypergraphs, incidence_from_roles
from vmhan_lib.hypergraph.config import (
    EDGE_TYPES,
    INTER_MODAL_EDGES,
    INTRA_MODAL_EDGES,
    HypergraphConfig,
    Modality,
    NodeRole,
)
from vmhan_lib.hypergraph.structure import clique_expansion, symmetric_normalisation

__all__ = [
    "EDGE_TYPES", "HEAD_SLOT", "INTER_MODAL_EDGES", "INTRA_MODAL_EDGES", "TAIL_SLOT", "HypergraphBatch",
    "HypergraphConfig", "Modality", "NodeRole", "clique_expansion", "collate_hypergraphs",
    "incidence_from_roles", "symmetric_normalisation",
]
