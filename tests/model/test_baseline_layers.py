"""HGNN, GCN, variational GCN against their dense matrix formulas; GAT against a loop reference."""

from __future__ import annotations

import numpy as np
import torch

from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.structure import clique_expansion
from vmhan_lib.model.gat_layer import GATLayer
from vmhan_lib.model.gcn_layer import GCNLayer, gcn_operator
from vmhan_lib.model.hgnn_layer import HGNNLayer, hgnn_operator
from vmhan_lib.model.variational_gcn_layer import VariationalGCNLayer

from tests.factories import random_instances

HIDDEN = 8


def elu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, np.expm1(v))


def _graphs(seed: int = 5):
    batch = collate_hypergraphs(random_instances(4, seed=seed))
    x = torch.randn(batch.batch_size, batch.num_nodes, HIDDEN, dtype=torch.float64)
    return batch, x


def _real(batch, b: int) -> tuple[list[int], np.ndarray]:
    """Real node slots of graph b and its incidence restricted to them and to its non-empty edges."""
    real = [i for i in range(batch.num_nodes) if batch.node_mask[b, i]]
    edges = [j for j in range(batch.num_edges) if batch.edge_mask[b, j]]
    return real, batch.incidence[b].numpy()[np.ix_(real, edges)].astype(np.float64)


def _clique_adjacency(H: np.ndarray) -> np.ndarray:
    """A + I of the clique expansion, by loops over the hyperedges."""
    n = H.shape[0]
    adjacency = np.eye(n)
    for j in range(H.shape[1]):
        nodes = [i for i in range(n) if H[i, j]]
        for u in nodes:
            for v in nodes:
                adjacency[u, v] = 1.0
    return adjacency


def _gcn_matrix(H: np.ndarray) -> np.ndarray:
    adjacency = _clique_adjacency(H)
    d_inv_sqrt = np.diag(1.0 / np.sqrt(adjacency.sum(axis=1)))
    return d_inv_sqrt @ adjacency @ d_inv_sqrt


def test_hgnn_matches_feng_formula() -> None:
    batch, x = _graphs()
    layer = HGNNLayer(HIDDEN).double()
    with torch.no_grad():
        out = layer(x, hgnn_operator(batch.incidence.double()))
    theta, bias = layer.theta.weight.detach().numpy().T, layer.theta.bias.detach().numpy()
    for b in range(batch.batch_size):
        real, H = _real(batch, b)
        Dv = np.diag(H.sum(axis=1) ** -0.5)
        De_inv = np.diag(1.0 / H.sum(axis=0))
        W = np.eye(H.shape[1])
        expected = x[b, real].numpy() + elu(Dv @ H @ W @ De_inv @ H.T @ Dv @ x[b, real].numpy() @ theta + bias)
        assert np.allclose(out[b, real].numpy(), expected, atol=1e-10)
        padded = [i for i in range(batch.num_nodes) if i not in real]
        assert torch.equal(out[b, padded], x[b, padded])


def test_gcn_matches_kipf_formula_on_clique_expansion() -> None:
    batch, x = _graphs()
    layer = GCNLayer(HIDDEN).double()
    with torch.no_grad():
        out = layer(x, gcn_operator(batch.incidence.double(), batch.node_mask))
    theta, bias = layer.theta.weight.detach().numpy().T, layer.theta.bias.detach().numpy()
    for b in range(batch.batch_size):
        real, H = _real(batch, b)
        expected = x[b, real].numpy() + elu(_gcn_matrix(H) @ x[b, real].numpy() @ theta + bias)
        assert np.allclose(out[b, real].numpy(), expected, atol=1e-10)


def test_variational_gcn_propagates_variance_with_squared_weights() -> None:
    batch, mu = _graphs()
    sigma = torch.rand_like(mu) + 0.1
    layer = VariationalGCNLayer(HIDDEN).double()
    with torch.no_grad():
        new_mu, new_sigma = layer(mu, sigma, gcn_operator(batch.incidence.double(), batch.node_mask))
    p = {name: value.detach().numpy() for name, value in layer.state_dict().items()}
    for b in range(batch.batch_size):
        real, H = _real(batch, b)
        A_hat = _gcn_matrix(H)
        pre_mu = A_hat @ mu[b, real].numpy() @ p["theta_mean.weight"].T + p["theta_mean.bias"]
        expected_mu = mu[b, real].numpy() + elu(pre_mu)
        pre = (A_hat * A_hat) @ sigma[b, real].numpy() @ p["theta_variance.weight"].T + p["theta_variance.bias"]
        expected_sigma = sigma[b, real].numpy() + np.log1p(np.exp(pre))
        assert np.allclose(new_mu[b, real].numpy(), expected_mu, atol=1e-10)
        assert np.allclose(new_sigma[b, real].numpy(), expected_sigma, atol=1e-10)
    assert (new_sigma > 0).all()


def test_gat_matches_loop_reference() -> None:
    batch, x = _graphs()
    heads = 2
    layer = GATLayer(HIDDEN, heads).double()
    adjacency = clique_expansion(batch.incidence, batch.node_mask)
    with torch.no_grad():
        out = layer(x, adjacency)
        alpha, _ = layer.attention(x, adjacency)
    W = layer.projection.weight.detach().numpy()
    a_src, a_dst = layer.attention_source.detach().numpy(), layer.attention_target.detach().numpy()
    d_k = HIDDEN // heads
    for b in range(batch.batch_size):
        real, H = _real(batch, b)
        neighbours = _clique_adjacency(H)
        h = x[b, real].numpy() @ W.T
        for u in range(len(real)):
            message = np.zeros(HIDDEN)
            for k in range(heads):
                cols = slice(k * d_k, (k + 1) * d_k)
                js = [v for v in range(len(real)) if neighbours[u, v]]
                raw = [a_src[k] @ h[u, cols] + a_dst[k] @ h[v, cols] for v in js]
                scores = np.array([s if s > 0 else 0.2 * s for s in raw])
                weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
                for v, w in zip(js, weights):
                    message[cols] += w * h[v, cols]
                    assert np.isclose(alpha[b, k, real[u], real[v]].item(), w)
                assert np.isclose(alpha[b, k, real[u]].sum().item(), 1.0)
            assert np.allclose(out[b, real[u]].numpy(), x[b, real[u]].numpy() + elu(message), atol=1e-10)
