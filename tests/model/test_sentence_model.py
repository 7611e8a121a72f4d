"""The model in sentence scope: V-HAN on a sentence hypergraph against the loop reference, pairs
classified from their own head and tail, every variant learns a tiny task."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vmhan_lib.hypergraph.sentence import SentencePair, collate_sentences
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.variants import VARIANTS, variant_config
from vmhan_lib.model.variational_representation import VariationalRepresentation
from vmhan_lib.model.vhan_layer import VHANLayer, VHANState, initial_edge_state
from vmhan_lib.model.vmhan import build_model

from tests.factories import TINY, handmade_instance, sentence_places, signal_instances
from tests.model.test_vhan_layer import HEADS, HIDDEN, reference_vhan

SENTENCE_TINY = TINY.with_hypergraph(scope="sentence")


def sentences(instances, places) -> list[list[SentencePair]]:
    grouped: dict[int, list[SentencePair]] = {}
    for nodes, (sentence, head, tail) in zip(instances, places):
        grouped.setdefault(sentence, []).append(SentencePair(nodes, head, tail))
    return list(grouped.values())


def shared_entity_sentences(generator: torch.Generator) -> list[list[SentencePair]]:
    """Two sentences: 3 entities / 3 pairs with an image and objects; 2 entities / 1 pair, text only."""
    first = [SentencePair(handmade_instance(["A", "B", "x"], ["<image>", "o1"], n_objects=1, generator=generator), 0, 1),
             SentencePair(handmade_instance(["A", "C"], ["<image>", "o2", "v"], n_objects=1, generator=generator), 0, 2),
             SentencePair(handmade_instance(["B", "C", "x"], [], n_objects=0, generator=generator), 1, 2)]
    second = [SentencePair(handmade_instance(["D", "E"], [], n_objects=0, generator=generator), 3, 4)]
    return [first, second]


@pytest.mark.parametrize("variational", [True, False])
def test_vhan_on_sentence_graphs_matches_the_loop_reference(variational: bool) -> None:
    batch = collate_sentences(shared_entity_sentences(torch.Generator().manual_seed(1)), SENTENCE_TINY.hypergraph)
    representation = VariationalRepresentation(12, 10, HIDDEN, variational=variational)
    layer = VHANLayer(HIDDEN, HEADS, variational=variational).double()
    incidence = batch.incidence.double()
    with torch.no_grad():
        mu, sigma = representation(batch.text_features, batch.visual_features, batch.node_mask)
        mu, sigma = mu.double(), None if sigma is None else sigma.double()
        state = VHANState(mu, sigma, *initial_edge_state(mu, sigma, incidence))
        new, _ = layer(state, incidence)
    for b in range(batch.batch_size):
        real = [i for i in range(batch.num_nodes) if batch.node_mask[b, i]]
        edges = [[real.index(i) for i in real if batch.incidence[b, i, j]] for j in range(batch.num_edges)]
        as_numpy = lambda t: None if t is None else t[b].numpy()  # noqa: E731
        x_mu, x_sigma, e_mu, _, _, _ = reference_vhan(
            layer, as_numpy(mu)[real], None if sigma is None else as_numpy(sigma)[real], as_numpy(state.edge_mu),
            as_numpy(state.edge_sigma), edges)
        assert np.allclose(new.node_mu[b, real].numpy(), x_mu, atol=1e-10)
        assert np.allclose(new.edge_mu[b].numpy(), e_mu, atol=1e-10)
        if variational:
            assert np.allclose(new.node_sigma[b, real].numpy(), x_sigma, atol=1e-10)


def test_each_pair_is_classified_from_its_own_head_and_tail_and_batching_changes_nothing() -> None:
    torch.manual_seed(0)
    model = build_model(SENTENCE_TINY).eval()
    groups = shared_entity_sentences(torch.Generator().manual_seed(2))
    with torch.no_grad():
        together = model(collate_sentences(groups, SENTENCE_TINY.hypergraph))
        alone = torch.cat([model(collate_sentences([group], SENTENCE_TINY.hypergraph)).logits for group in groups])
        graph, head, tail = together.pair_index.unbind(dim=1)
        pair = torch.cat([together.node_mu[graph, head], together.node_sigma[graph, head],
                          together.node_mu[graph, tail], together.node_sigma[graph, tail]], dim=-1)
        expected = model.classifier(pair)
    assert together.logits.shape == (4, TINY.num_relations)
    torch.testing.assert_close(together.logits, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together.logits, expected)
    assert together.pair_index.tolist() == [[0, 0, 1], [0, 0, 2], [0, 1, 2], [1, 0, 1]]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_learns_a_tiny_task_in_sentence_scope(name: str) -> None:
    config = variant_config(name, SENTENCE_TINY)
    assert config.hypergraph.scope == "sentence"
    instances, labels = signal_instances(48, seed=5)
    places = sentence_places(48, seed=6)
    groups = sentences(instances, places)
    batch = collate_sentences(groups, config.hypergraph, [[int(labels[p]) for p, place in enumerate(places)
                                                           if place[0] == s] for s in range(len(groups))])
    assert batch.batch_size < 48 and torch.equal(batch.labels, labels)
    model = build_model(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return vmhan_loss(model(batch), batch.labels, config)["classification"].item()

    before = eval_loss()
    model.train()
    for _ in range(30):
        optimiser.zero_grad()
        vmhan_loss(model(batch), batch.labels, config)["total"].backward()
        optimiser.step()
    assert eval_loss() < 0.5 * before


def test_variants_keep_the_scope() -> None:
    assert {variant_config(name, SENTENCE_TINY).hypergraph.scope for name in VARIANTS} == {"sentence"}
    assert replace(SENTENCE_TINY.hypergraph, scope="pair") == TINY.hypergraph
