"""The late-fusion baseline of the controlled visual-signal study: [x_h; x_t; mean visual node], no graph."""

from __future__ import annotations

import torch

from tests.factories import TINY, random_split
from vmhan_lib.hypergraph.batch import HEAD_SLOT, TAIL_SLOT, collate_hypergraphs
from vmhan_lib.model.late_fusion import LateFusion, visual_mean
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS, variant_config
from vmhan_lib.model.vmhan import build_model


def test_visual_mean_averages_the_real_visual_nodes_only() -> None:
    mu = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # [B=2, N=2 text + 3 visual, d=3]
    mask = torch.tensor([[True, True, True, True, False], [True, True, False, False, False]])
    pooled = visual_mean(mu, mask, n_text=2)
    assert torch.equal(pooled[0], mu[0, 2:4].mean(dim=0))  # two real visual nodes
    assert torch.equal(pooled[1], torch.zeros(3))  # none


def test_late_fusion_is_the_text_only_classifier_plus_the_pooled_visual_nodes() -> None:
    config = variant_config("Late fusion", TINY)
    assert config.encoder == "late-fusion" and not config.variational and not config.hypergraph.use_text_llm
    assert "Late fusion" not in TABLE1_VARIANTS + TABLE2_VARIANTS  # no paper row
    model = build_model(config).eval()
    assert isinstance(model, LateFusion)
    split = random_split(6, 0, n_visual=4)
    batch = collate_hypergraphs(split.nodes, config.hypergraph, torch.tensor(split.labels))
    output = model(batch)
    mu = output.node_mu  # [B, N, d]
    n_text = batch.text_features.shape[1]
    reference = model.classifier.linear(torch.cat([mu[:, HEAD_SLOT], mu[:, TAIL_SLOT], mu[:, n_text:].mean(dim=1)], -1))
    assert torch.allclose(output.logits, reference, atol=1e-6)
    assert set(vmhan_loss(output, batch.labels, config)) == {"classification", "total"}


def test_late_fusion_reads_the_visual_nodes_and_text_only_does_not() -> None:
    split = random_split(6, 0, n_visual=4)
    changed = [node.__class__(**{**node.__dict__, "visual_features": node.visual_features + 5.0}) for node in split.nodes]
    for name, reads in (("Late fusion", True), ("Text-only", False)):
        config = variant_config(name, TINY)
        model = build_model(config).eval()
        logits = [model(collate_hypergraphs(nodes, config.hypergraph)).logits for nodes in (split.nodes, changed)]
        assert torch.allclose(*logits) is not reads
