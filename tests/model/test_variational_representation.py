"""Eq. 4 against a written-out reference; positivity of the variances; padding."""

from __future__ import annotations

import numpy as np
import torch

from vmhan_lib.model.variational_representation import MIN_VARIANCE, VariationalRepresentation


def _layer_norm(v: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    return (v - v.mean()) / np.sqrt(v.var() + eps) * weight + bias


def test_eq4_reference_per_node() -> None:
    layer = VariationalRepresentation(d_text=5, d_visual=3, hidden=4)
    text, visual = torch.randn(2, 3, 5), torch.randn(2, 2, 3)
    node_mask = torch.tensor([[True, True, False, True, False], [True, True, True, True, True]])
    mu, sigma = layer(text, visual, node_mask)
    p = {name: value.detach().numpy().astype(np.float64) for name, value in layer.state_dict().items()}
    for b in range(2):
        for i in range(5):
            if not node_mask[b, i]:
                assert np.allclose(mu[b, i].detach().numpy(), 0) and np.allclose(sigma[b, i].detach().numpy(), 1)
                continue
            if i < 3:
                projected = p["text_projection.weight"] @ text[b, i].numpy() + p["text_projection.bias"]
            else:
                projected = p["visual_projection.weight"] @ visual[b, i - 3].numpy() + p["visual_projection.bias"]
            normed = _layer_norm(projected, p["norm.weight"], p["norm.bias"], layer.norm.eps)
            expected_mu = p["to_mean.weight"] @ normed + p["to_mean.bias"]
            expected_sigma = np.log1p(np.exp(p["to_variance.weight"] @ normed + p["to_variance.bias"])) + MIN_VARIANCE
            assert np.allclose(mu[b, i].detach().numpy(), expected_mu, atol=1e-5)
            assert np.allclose(sigma[b, i].detach().numpy(), expected_sigma, atol=1e-5)


def test_variances_positive_even_for_extreme_inputs() -> None:
    layer = VariationalRepresentation(4, 4, 8)
    _, sigma = layer(1e4 * torch.randn(3, 2, 4), -1e4 * torch.randn(3, 2, 4), torch.ones(3, 4, dtype=torch.bool))
    assert (sigma >= MIN_VARIANCE).all() and torch.isfinite(sigma).all()


def test_deterministic_form_has_no_variance_path() -> None:
    layer = VariationalRepresentation(4, 4, 8, variational=False)
    mu, sigma = layer(torch.randn(1, 2, 4), torch.randn(1, 1, 4), torch.ones(1, 3, dtype=torch.bool))
    assert sigma is None and mu.shape == (1, 3, 8)
    assert not any("variance" in name for name, _ in layer.named_parameters())


def test_tail_source_gives_the_tail_slot_its_object_node() -> None:
    torch.manual_seed(0)
    representation = VariationalRepresentation(4, 6, 8)
    text, visual = torch.randn(2, 3, 4), torch.randn(2, 2, 6)
    mask = torch.ones(2, 5, dtype=torch.bool)
    plain_mu, plain_sigma = representation(text, visual, mask)
    mu, sigma = representation(text, visual, mask, torch.tensor([1, 4]))  # instance 1: the tail is node 4 (visual)
    assert torch.equal(mu[0], plain_mu[0]) and torch.equal(sigma[0], plain_sigma[0])  # tail source = its own slot
    assert torch.allclose(mu[1, 1], plain_mu[1, 4]) and torch.allclose(sigma[1, 1], plain_sigma[1, 4])
    assert not torch.allclose(mu[1, 1], plain_mu[1, 1])
    keep = [0, 2, 3, 4]
    assert torch.equal(mu[1, keep], plain_mu[1, keep])  # every other node unchanged
