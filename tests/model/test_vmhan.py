"""The full model and every variant: padding, permutation invariance, determinism, gradients."""

from __future__ import annotations

import pytest
import torch

from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.variants import VARIANTS, variant_config
from vmhan_lib.model.vmhan import build_model

from tests.factories import TINY, random_instances

ALL_VARIANTS = list(VARIANTS)


def _eval_logits(model: torch.nn.Module, batch: HypergraphBatch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(batch).logits


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_padding_and_garbage_in_padded_rows_change_nothing(name: str) -> None:
    config = variant_config(name, TINY)
    model = build_model(config)
    instances = random_instances(6, seed=11)
    alone = torch.cat([_eval_logits(model, collate_hypergraphs([nodes], config.hypergraph)) for nodes in instances])
    batch = collate_hypergraphs(instances, config.hypergraph)
    assert torch.allclose(_eval_logits(model, batch), alone, atol=1e-5)
    text_padding = ~batch.node_mask[:, : batch.num_text_slots]
    visual_padding = ~batch.node_mask[:, batch.num_text_slots :]
    batch.text_features[text_padding] = 1e3 * torch.randn(int(text_padding.sum()), config.d_text)
    batch.visual_features[visual_padding] = 1e3 * torch.randn(int(visual_padding.sum()), config.d_visual)
    assert torch.allclose(_eval_logits(model, batch), alone, atol=1e-5)


def _permute_non_entity_slots(batch: HypergraphBatch, generator: torch.Generator) -> HypergraphBatch:
    """Shuffle the text slots after head/tail among themselves and the visual slots among themselves."""
    n_text, n_nodes = batch.num_text_slots, batch.num_nodes
    text_order = torch.cat([torch.arange(2), 2 + torch.randperm(n_text - 2, generator=generator)])
    visual_order = torch.randperm(n_nodes - n_text, generator=generator)
    order = torch.cat([text_order, n_text + visual_order])
    return HypergraphBatch(
        text_features=batch.text_features[:, text_order],
        visual_features=batch.visual_features[:, visual_order],
        node_mask=batch.node_mask[:, order],
        node_role=batch.node_role[:, order],
        modality=batch.modality[:, order],
        incidence=batch.incidence[:, order],
        edge_mask=batch.edge_mask,
        edge_types=batch.edge_types,
        node_names=[[names[i] for i in order.tolist()] for names in batch.node_names],
    )


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_permuting_non_entity_nodes_leaves_the_output_unchanged(name: str) -> None:
    config = variant_config(name, TINY)
    model = build_model(config)
    batch = collate_hypergraphs(random_instances(6, seed=12), config.hypergraph)
    permuted = _permute_non_entity_slots(batch, torch.Generator().manual_seed(1))
    assert not torch.equal(permuted.node_role, batch.node_role) or batch.num_nodes <= 3
    assert torch.allclose(_eval_logits(model, permuted), _eval_logits(model, batch), atol=1e-5)


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_one_backward_gives_finite_gradients_for_every_parameter(name: str) -> None:
    config = variant_config(name, TINY)
    model = build_model(config).train()
    batch = collate_hypergraphs(random_instances(8, seed=13), config.hypergraph, labels=torch.arange(8) % 4)
    vmhan_loss(model(batch), batch.labels, config)["total"].backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


def test_evaluation_is_deterministic_and_training_samples() -> None:
    config = variant_config("VM-HAN (Ours)", TINY)
    model = build_model(config)
    batch = collate_hypergraphs(random_instances(8, seed=14), config.hypergraph)
    assert torch.equal(_eval_logits(model, batch), _eval_logits(model, batch))
    model.train()
    torch.manual_seed(0)
    first = model(batch).logits
    torch.manual_seed(1)
    assert not torch.allclose(first, model(batch).logits)


def test_without_the_variational_representation_training_draws_nothing() -> None:
    from dataclasses import replace

    config = replace(variant_config("w/o Variational Representation", TINY), dropout=0.0)
    model = build_model(config).train()
    batch = collate_hypergraphs(random_instances(4, seed=15), config.hypergraph)
    assert torch.equal(model(batch).logits, model(batch).logits)


def test_attention_is_returned_per_layer() -> None:
    config = variant_config("VM-HAN (Ours)", TINY)
    model = build_model(config).eval()
    batch = collate_hypergraphs(random_instances(3, seed=16), config.hypergraph)
    output = model(batch, return_attention=True)
    assert len(output.attention) == config.num_layers
    assert output.attention[0].edge_from_nodes.shape == (3, config.heads, batch.num_edges, batch.num_nodes)
    assert model(batch).attention is None


def test_batch_built_for_another_hypergraph_is_refused() -> None:
    config = variant_config("w/o Global Hypergraph", TINY)
    batch = collate_hypergraphs(random_instances(2, seed=17))
    with pytest.raises(ValueError, match="collate with the model's config.hypergraph"):
        build_model(config)(batch)
