"""V-HAN (Eq. 5-8) against a loop-by-loop reference on small hypergraphs; attention normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.model.variational_representation import VariationalRepresentation
from vmhan_lib.model.vhan_layer import VHANLayer, VHANState, initial_edge_state

from tests.factories import random_instances

HIDDEN, HEADS = 8, 2


def elu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, np.expm1(v))


def softplus(v: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(v))


def softmax(scores: list[float]) -> list[float]:
    exps = [np.exp(s - max(scores)) for s in scores]
    return [e / sum(exps) for e in exps]


def reference_vhan(layer: VHANLayer, x_mu, x_sigma, e_mu, e_sigma, edges: list[list[int]]):
    """Eq. 5-8 for one hypergraph, node by node and edge by edge. ``edges[j]`` = the nodes of e_j."""
    p = {name: value.detach().numpy().astype(np.float64) for name, value in layer.state_dict().items()}
    d_k = HIDDEN // HEADS
    heads = [slice(k * d_k, (k + 1) * d_k) for k in range(HEADS)]
    variational = x_sigma is not None

    def score(edge_vec, node_vec, k):
        edge_key = (p["edge_attention.weight"] @ edge_vec)[heads[k]]
        node_key = (p["node_attention.weight"] @ node_vec)[heads[k]]
        return float(edge_key @ node_key) / np.sqrt(d_k)

    new_e_mu, new_e_sigma = e_mu.copy(), None if not variational else e_sigma.copy()
    alpha_edge = {}
    for j, nodes in enumerate(edges):
        if not nodes:
            continue
        sum_mu, sum_sigma = np.zeros(HIDDEN), np.zeros(HIDDEN)
        for k in range(HEADS):
            alphas = softmax([score(e_mu[j], x_mu[i], k) for i in nodes])  # Eq. 5
            for i, a in zip(nodes, alphas):
                alpha_edge[(k, j, i)] = a
                sum_mu[heads[k]] += a * x_mu[i][heads[k]]
                if variational:
                    sum_sigma[heads[k]] += a * a * x_sigma[i][heads[k]]
        new_e_mu[j] = elu(p["edge_mean.weight"] @ sum_mu + p["edge_mean.bias"]) + e_mu[j]  # Eq. 6
        if variational:
            new_e_sigma[j] = softplus(p["edge_variance.weight"] @ sum_sigma + p["edge_variance.bias"]) + e_sigma[j]

    new_x_mu, new_x_sigma = x_mu.copy(), None if not variational else x_sigma.copy()
    alpha_node = {}
    for i in range(len(x_mu)):
        node_edges = [j for j, nodes in enumerate(edges) if i in nodes]
        if not node_edges:
            continue
        sum_mu, sum_sigma = np.zeros(HIDDEN), np.zeros(HIDDEN)
        for k in range(HEADS):
            alphas = softmax([score(new_e_mu[j], x_mu[i], k) for j in node_edges])  # Eq. 7
            for j, a in zip(node_edges, alphas):
                alpha_node[(k, i, j)] = a
                sum_mu[heads[k]] += a * new_e_mu[j][heads[k]]
                if variational:
                    sum_sigma[heads[k]] += a * a * new_e_sigma[j][heads[k]]
        new_x_mu[i] = elu(p["node_mean.weight"] @ sum_mu + p["node_mean.bias"]) + x_mu[i]  # Eq. 8
        if variational:
            new_x_sigma[i] = softplus(p["node_variance.weight"] @ sum_sigma + p["node_variance.bias"]) + x_sigma[i]
    return new_x_mu, new_x_sigma, new_e_mu, new_e_sigma, alpha_edge, alpha_node


def _batch_and_state(variational: bool, seed: int = 3):
    instances = random_instances(5, seed=seed)
    batch = collate_hypergraphs(instances)
    representation = VariationalRepresentation(12, 10, HIDDEN, variational=variational)
    with torch.no_grad():
        mu, sigma = representation(batch.text_features, batch.visual_features, batch.node_mask)
        mu, sigma = mu.double(), None if sigma is None else sigma.double()
        edge_mu, edge_sigma = initial_edge_state(mu, sigma, batch.incidence.double())
    return batch, VHANState(mu, sigma, edge_mu, edge_sigma)


@pytest.mark.parametrize("variational", [True, False])
def test_layer_matches_loop_reference(variational: bool) -> None:
    batch, state = _batch_and_state(variational)
    layer = VHANLayer(HIDDEN, HEADS, variational=variational).double()
    with torch.no_grad():
        new, attention = layer(state, batch.incidence.double(), return_attention=True)
    for b in range(batch.batch_size):
        real = [i for i in range(batch.num_nodes) if batch.node_mask[b, i]]
        edges = [[real.index(i) for i in real if batch.incidence[b, i, j]] for j in range(batch.num_edges)]
        numpy = lambda t: None if t is None else t[b].numpy()  # noqa: E731
        # the initial hyperedge state is the mean of its nodes
        for j, nodes in enumerate(edges):
            if nodes:
                assert np.allclose(state.edge_mu[b, j].numpy(), state.node_mu[b, real].numpy()[nodes].mean(axis=0))
        x_mu, x_sigma, e_mu, e_sigma, alpha_edge, alpha_node = reference_vhan(
            layer, numpy(state.node_mu)[real], None if state.node_sigma is None else numpy(state.node_sigma)[real],
            numpy(state.edge_mu), numpy(state.edge_sigma), edges,
        )
        assert np.allclose(new.node_mu[b, real].numpy(), x_mu, atol=1e-10)
        assert np.allclose(new.edge_mu[b].numpy(), e_mu, atol=1e-10)
        if variational:
            assert np.allclose(new.node_sigma[b, real].numpy(), x_sigma, atol=1e-10)
            assert np.allclose(new.edge_sigma[b].numpy(), e_sigma, atol=1e-10)
            assert (new.node_sigma[b, real] > 0).all()
        else:
            assert new.node_sigma is None and new.edge_sigma is None
        for (k, j, i), a in alpha_edge.items():
            assert np.isclose(attention.edge_from_nodes[b, k, j, real[i]].item(), a)
        for (k, i, j), a in alpha_node.items():
            assert np.isclose(attention.node_from_edges[b, k, real[i], j].item(), a)


def test_attention_is_normalised_over_the_right_group() -> None:
    batch, state = _batch_and_state(True, seed=7)
    layer = VHANLayer(HIDDEN, HEADS).double()
    with torch.no_grad():
        _, attention = layer(state, batch.incidence.double(), return_attention=True)
    edge_weights, node_weights = attention.edge_from_nodes, attention.node_from_edges
    assert edge_weights.shape == (batch.batch_size, HEADS, batch.num_edges, batch.num_nodes)
    assert node_weights.shape == (batch.batch_size, HEADS, batch.num_nodes, batch.num_edges)
    for weights in (edge_weights, node_weights):
        assert (weights >= 0).all() and (weights <= 1).all()
    outside = (batch.incidence == 0)
    assert (edge_weights.masked_select(outside.transpose(1, 2).unsqueeze(1)) == 0).all()
    assert (node_weights.masked_select(outside.unsqueeze(1)) == 0).all()
    edge_sums = edge_weights.sum(dim=-1)  # over the nodes of each edge
    assert torch.allclose(edge_sums, batch.edge_mask.unsqueeze(1).double().expand_as(edge_sums))
    node_sums = node_weights.sum(dim=-1)  # over the edges of each node
    assert torch.allclose(node_sums, batch.node_mask.unsqueeze(1).double().expand_as(node_sums))
    assert not batch.edge_mask.all(), "fixture should contain masked (empty) hyperedges"


def test_masked_edges_and_padded_nodes_get_no_update() -> None:
    batch, state = _batch_and_state(True, seed=7)
    layer = VHANLayer(HIDDEN, HEADS).double()
    with torch.no_grad():
        new, _ = layer(state, batch.incidence.double())
    padded, empty = ~batch.node_mask, ~batch.edge_mask
    assert torch.equal(new.node_mu[padded], state.node_mu[padded])
    assert torch.equal(new.node_sigma[padded], state.node_sigma[padded])
    assert torch.equal(new.edge_mu[empty], state.edge_mu[empty]) and (new.edge_mu[empty] == 0).all()


def test_sigma_must_match_the_layer_kind() -> None:
    batch, state = _batch_and_state(False)
    with pytest.raises(ValueError, match="node_sigma"):
        VHANLayer(HIDDEN, HEADS, variational=True).double()(state, batch.incidence.double())
