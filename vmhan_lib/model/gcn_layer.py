r"""GCN (Kipf & Welling, 2017) on the clique expansion of the hypergraph, the "repl. GCN" baseline.

    A_ij = 1 iff v_i, v_j share a hyperedge (clique expansion),  \tilde A = A + I,
    \hat A = \tilde D^{-1/2} \tilde A \tilde D^{-1/2},   \tilde D = diag(\tilde A 1),
    X' = X + ELU( \hat A X Theta + b )

The residual and ELU match V-HAN's Eq. 8. Padded slots have no self loop and no neighbour, so
their rows and columns of \hat A are 0 and they receive no update.

Shapes: X ``[B, N, d]``, \hat A ``[B, N, N]``.
"""

from __future__ import annotations

import torch

from vmhan_lib.hypergraph.structure import clique_expansion, symmetric_normalisation
from vmhan_lib.model.hgnn_layer import HGNNLayer


def gcn_operator(incidence: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
    """\\hat A ``[B, N, N]``: the symmetrically normalised clique expansion with self loops."""
    return symmetric_normalisation(clique_expansion(incidence, node_mask), dtype=incidence.dtype)


class GCNLayer(HGNNLayer):
    """X' = X + ELU(\\hat A X Theta + b): the HGNN layer's update with the operator
    :func:`gcn_operator` in place of HGNN's (the two differ only in the propagation matrix)."""
