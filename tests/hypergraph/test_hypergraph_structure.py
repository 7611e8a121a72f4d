"""Clique expansion and symmetric normalisation against explicit loops."""

from __future__ import annotations

import numpy as np
import torch

from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.structure import clique_expansion, symmetric_normalisation

from tests.factories import full_instance, text_only_instance


def test_clique_expansion_and_normalisation_by_loops(generator: torch.Generator) -> None:
    batch = collate_hypergraphs([full_instance(generator), text_only_instance(generator)])
    adjacency = clique_expansion(batch.incidence, batch.node_mask)
    normalised = symmetric_normalisation(adjacency)
    incidence = batch.incidence.numpy()
    for b in range(2):
        real = [i for i in range(batch.num_nodes) if batch.node_mask[b, i]]
        expected = np.zeros((batch.num_nodes, batch.num_nodes), dtype=bool)
        for j in range(incidence.shape[2]):
            nodes = [i for i in range(batch.num_nodes) if incidence[b, i, j]]
            for u in nodes:
                for v in nodes:
                    expected[u, v] = True
        for i in real:
            expected[i, i] = True
        assert np.array_equal(adjacency[b].numpy(), expected)
        degree = expected.sum(axis=1)
        for u in range(batch.num_nodes):
            for v in range(batch.num_nodes):
                value = expected[u, v] / np.sqrt(degree[u] * degree[v]) if expected[u, v] else 0.0
                assert np.isclose(normalised[b, u, v].item(), value, atol=1e-6)
    assert not adjacency[1, 2:].any() and not adjacency[1, :, 2:].any()
