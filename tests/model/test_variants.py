"""Every variant changes what it claims, and every variant learns a tiny task."""

from __future__ import annotations

import pytest
import torch

from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.config import EDGE_TYPES, NodeRole
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.variants import FULL_MODEL, TABLE2_VARIANTS, VARIANTS, variant_config
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.model.gat_layer import GATLayer
from vmhan_lib.model.gcn_layer import GCNLayer
from vmhan_lib.model.hgnn_layer import HGNNLayer
from vmhan_lib.model.variational_gcn_layer import VariationalGCNLayer
from vmhan_lib.model.vhan_layer import VHANLayer

from tests.factories import TINY, random_instances, signal_instances

PAPER_TABLE2 = (
    "VM-HAN (Ours)", "w/o Multi-Modal Hypergraph", "w/o Variational Representation", "w/o V-HAN", "w/o KL Loss",
    "w/o Text LLM Enhancement", "w/o Visual LLM Enhancement", "w/o Global Hypergraph", "w/o Intra-modal Hypergraph",
    "w/o Inter-modal Hypergraph", "repl. HGNN", "repl. Variational GCN", "repl. GCN", "repl. GAT",
)


def _setup(name: str, count: int = 8, seed: int = 21):
    config = variant_config(name, TINY)
    batch = collate_hypergraphs(random_instances(count, seed=seed), config.hypergraph, labels=torch.arange(count) % 4)
    return config, build_model(config), batch


def test_names_are_the_paper_rows() -> None:
    assert TABLE2_VARIANTS == PAPER_TABLE2
    assert set(VARIANTS) == set(PAPER_TABLE2) | {"Text-only", "GCN", "GAT", "HGNN", "Late fusion"}  # late fusion: issue 24
    assert variant_config("VM-HAN (Ours)", TINY) == TINY  # the full model is the base configuration
    assert len({variant_config(name, TINY) for name in VARIANTS}) == len(VARIANTS)  # every row a distinct model
    with pytest.raises(ValueError, match="known variants: 'VM-HAN \\(Ours\\)'"):
        variant_config("w/o Everything", TINY)


def test_full_model_uses_everything() -> None:
    config, model, batch = _setup(FULL_MODEL)
    assert batch.edge_types == EDGE_TYPES
    assert {int(NodeRole.TEXT_LLM), int(NodeRole.VISUAL_LLM)} <= set(batch.node_role.flatten().tolist())
    assert all(isinstance(layer, VHANLayer) and layer.variational for layer in model.layers)
    assert set(vmhan_loss(model(batch), batch.labels, config)) == {"classification", "reconstruction", "kl", "total"}


@pytest.mark.parametrize(
    ("name", "edge_types"),
    [
        ("w/o Global Hypergraph", ("textual", "visual", "head_visual", "tail_visual")),
        ("w/o Intra-modal Hypergraph", ("global", "head_visual", "tail_visual")),
        ("w/o Inter-modal Hypergraph", ("global", "textual", "visual")),
        ("w/o Multi-Modal Hypergraph", ("textual", "visual")),
    ],
)
def test_hyperedge_ablations_remove_their_columns(name: str, edge_types: tuple[str, ...]) -> None:
    _, _, batch = _setup(name)
    assert batch.edge_types == edge_types and batch.incidence.shape[-1] == len(edge_types)


def test_without_multimodal_hypergraph_visual_nodes_cannot_reach_the_pair() -> None:
    _, model, batch = _setup("w/o Multi-Modal Hypergraph")
    model.eval()
    with torch.no_grad():
        before = model(batch).logits
        batch.visual_features.normal_()
        assert torch.allclose(model(batch).logits, before, atol=1e-6)
    _, full, full_batch = _setup(FULL_MODEL)
    full.eval()
    with torch.no_grad():
        before = full(full_batch).logits
        full_batch.visual_features.normal_()
        assert not torch.allclose(full(full_batch).logits, before, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "absent_role"),
    [("w/o Text LLM Enhancement", NodeRole.TEXT_LLM), ("w/o Visual LLM Enhancement", NodeRole.VISUAL_LLM)],
)
def test_llm_ablations_drop_their_nodes(name: str, absent_role: NodeRole) -> None:
    _, _, batch = _setup(name)
    assert int(absent_role) not in batch.node_role.tolist()


def test_without_kl_has_no_kl_term() -> None:
    config, model, batch = _setup("w/o KL Loss")
    assert set(vmhan_loss(model(batch), batch.labels, config)) == {"classification", "reconstruction", "total"}


def test_without_variational_representation_has_no_sigma_path() -> None:
    config, model, batch = _setup("w/o Variational Representation")
    output = model(batch)
    assert output.node_sigma is None and output.initial_sigma is None
    assert not any("variance" in name for name, _ in model.named_parameters())
    assert model.classifier.linear.in_features == 2 * config.hidden
    assert all(isinstance(layer, VHANLayer) for layer in model.layers) and len(model.layers) == config.num_layers
    assert set(vmhan_loss(output, batch.labels, config)) == {"classification", "total"}


def test_without_vhan_feeds_eq4_to_the_classifier() -> None:
    config, model, batch = _setup("w/o V-HAN")
    output = model(batch)
    assert len(model.layers) == 0
    assert torch.equal(output.node_mu, output.initial_mu) and torch.equal(output.node_sigma, output.initial_sigma)
    assert set(vmhan_loss(output, batch.labels, config)) == {"classification", "kl", "total"}


@pytest.mark.parametrize(
    ("name", "layer_type", "variational"),
    [
        ("repl. HGNN", HGNNLayer, False), ("repl. GCN", GCNLayer, False), ("repl. GAT", GATLayer, False),
        ("repl. Variational GCN", VariationalGCNLayer, True),
        ("HGNN", HGNNLayer, False), ("GCN", GCNLayer, False), ("GAT", GATLayer, False),
    ],
)
def test_replacements_use_their_layer(name: str, layer_type: type, variational: bool) -> None:
    config, model, batch = _setup(name)
    assert len(model.layers) == config.num_layers and all(isinstance(layer, layer_type) for layer in model.layers)
    assert (model(batch).node_sigma is not None) == variational
    table1_baseline = name in ("HGNN", "GCN", "GAT")
    roles = set(batch.node_role.flatten().tolist())
    assert (int(NodeRole.TEXT_LLM) in roles) != table1_baseline
    assert (int(NodeRole.VISUAL_LLM) in roles) != table1_baseline


def test_text_only_reads_head_and_tail_text_alone() -> None:
    config, model, batch = _setup("Text-only")
    assert batch.num_nodes == 2 and batch.visual_features.shape[1] == 0
    assert len(model.layers) == 0 and model.classifier.linear.in_features == 2 * config.hidden


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_learns_a_tiny_task(name: str) -> None:
    config = variant_config(name, TINY)
    instances, labels = signal_instances(48, seed=5)
    batch = collate_hypergraphs(instances, config.hypergraph, labels)
    model = build_model(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return vmhan_loss(model(batch), labels, config)["classification"].item()

    before = eval_loss()
    model.train()
    for _ in range(30):
        optimiser.zero_grad()
        vmhan_loss(model(batch), labels, config)["total"].backward()
        optimiser.step()
    after = eval_loss()
    assert after < 0.5 * before, (before, after)
