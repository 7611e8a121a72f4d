"""Eq. 10-12: reconstruction, KL to N(0, I), the weighted sum and its parts."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vmhan_lib.model.losses import kl_loss, reconstruction_loss, vmhan_loss
from vmhan_lib.model.vmhan import ModelOutput

from tests.factories import TINY


def _output(requires_grad: bool = False) -> ModelOutput:
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    shape = (2, 4, 3)
    tensors = [torch.randn(shape), torch.rand(shape) + 0.1, torch.randn(shape), torch.rand(shape) + 0.1]
    mu, sigma, mu0, sigma0 = [t.requires_grad_(requires_grad) for t in tensors]
    return ModelOutput(torch.randn(2, 4, requires_grad=requires_grad), mu, sigma, mu0, sigma0, mask)


def test_kl_matches_torch_distributions_mean_over_real_nodes() -> None:
    output = _output()
    per_node = kl_divergence(Normal(output.node_mu, output.node_sigma.sqrt()), Normal(0.0, 1.0)).sum(-1)
    expected = per_node[output.node_mask].mean()
    assert torch.isclose(kl_loss(output), expected, atol=1e-6)


def test_reconstruction_by_loops_over_real_nodes() -> None:
    output = _output()
    total, count = 0.0, 0
    for b in range(2):
        for i in range(4):
            if output.node_mask[b, i]:
                total += float(((output.initial_mu[b, i] - output.node_mu[b, i]) ** 2).sum())
                total += float(((output.initial_sigma[b, i] - output.node_sigma[b, i]) ** 2).sum())
                count += 1
    assert torch.isclose(reconstruction_loss(output), torch.tensor(total / count), atol=1e-5)


def test_padded_nodes_do_not_count() -> None:
    output = _output()
    garbage = output.node_mu.clone()
    garbage[~output.node_mask] = 1e6
    assert torch.equal(kl_loss(replace(output, node_mu=garbage)), kl_loss(output))
    assert torch.equal(reconstruction_loss(replace(output, node_mu=garbage)), reconstruction_loss(output))


def test_reconstruction_targets_are_detached() -> None:
    output = _output(requires_grad=True)
    reconstruction_loss(output).backward()
    assert output.initial_mu.grad is None and output.initial_sigma.grad is None
    assert output.node_mu.grad is not None and output.node_sigma.grad is not None


def test_weighted_sum_and_parts() -> None:
    output, labels = _output(), torch.tensor([1, 3])
    config = replace(TINY, lambda_c=0.5, lambda_rec=0.25, lambda_kl=0.125)
    parts = vmhan_loss(output, labels, config)
    assert set(parts) == {"classification", "reconstruction", "kl", "total"}
    assert torch.isclose(parts["classification"], torch.nn.functional.cross_entropy(output.logits, labels))
    expected = 0.5 * parts["classification"] + 0.25 * parts["reconstruction"] + 0.125 * parts["kl"]
    assert torch.isclose(parts["total"], expected)
    without_kl = vmhan_loss(output, labels, replace(config, lambda_kl=0.0))
    assert "kl" not in without_kl
    assert torch.isclose(without_kl["total"], 0.5 * parts["classification"] + 0.25 * parts["reconstruction"])


def test_deterministic_output_has_only_classification() -> None:
    output = replace(_output(), node_sigma=None, initial_sigma=None)
    assert set(vmhan_loss(output, torch.tensor([0, 1]), TINY)) == {"classification", "total"}
    with pytest.raises(ValueError, match="variational"):
        kl_loss(output)
