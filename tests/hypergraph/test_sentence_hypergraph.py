"""Sentence scope (``hypergraph.scope = sentence``): the hypergraph of a sentence with all its pairs."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.config import HypergraphConfig, NodeRole
from vmhan_lib.hypergraph.sentence import SentencePair, collate_sentences

from tests.factories import full_instance, handmade_instance, random_instances

SENTENCE = HypergraphConfig(scope="sentence")


def three_pairs(generator: torch.Generator) -> list[SentencePair]:
    """Entities Alice (0, 1), Acme (3, 4), Paris (6, 7): pairs (Alice, Acme), (Alice, Paris), (Acme, Paris).

    Text-LLM nodes: "joined" in the first two pairs (once in the graph), "CEO" in the first, none in
    the third. Visual: the image in every pair, objects: person (pairs 1, 2), logo (pair 1), tower
    (pair 2); pair 3 has no visual node of its own but shares the sentence's.
    """
    image = ["<image>"]
    return [
        SentencePair(handmade_instance(["Alice", "Acme", "joined", "CEO"], image + ["person", "logo"], n_objects=2,
                                       generator=generator), (0, 1), (3, 4)),
        SentencePair(handmade_instance(["Alice", "Paris", "joined"], image + ["person", "tower"], n_objects=2,
                                       generator=generator), (0, 1), (6, 7)),
        SentencePair(handmade_instance(["Acme", "Paris"], [], n_objects=0, generator=generator), (3, 4), (6, 7)),
    ]


def members(batch, b: int, j: int) -> set[int]:
    return {int(i) for i in batch.incidence[b, :, j].nonzero().flatten()}


def test_incidence_of_a_sentence_with_three_entities_and_three_pairs(generator: torch.Generator) -> None:
    pairs = three_pairs(generator)
    batch = collate_sentences([pairs], SENTENCE, [[1, 2, 0]])
    # text slots: 0 Alice, 1 Acme, 2 Paris, 3 joined, 4 CEO; visual from slot 5: <image>, person, logo, tower
    assert batch.node_names[0] == ["Alice", "Acme", "Paris", "joined", "CEO", "<image>", "person", "logo", "tower"]
    assert batch.node_role[0].tolist() == [NodeRole.HEAD, NodeRole.HEAD, NodeRole.TAIL, NodeRole.TEXT_LLM,
                                           NodeRole.TEXT_LLM, NodeRole.IMAGE, NodeRole.OBJECT, NodeRole.OBJECT,
                                           NodeRole.OBJECT]
    visual = {5, 6, 7, 8}
    expected = [
        ("global", set(range(9))),
        ("textual: Alice – Acme", {0, 1, 3, 4}), ("textual: Alice – Paris", {0, 2, 3}), ("textual: Acme – Paris", {1, 2}),
        ("visual", visual),
        ("head_visual: Alice", {0} | visual), ("head_visual: Acme", {1} | visual),  # Acme heads pair 3
        ("tail_visual: Paris", {2} | visual),
    ]
    assert batch.edge_names[0] == [name for name, _ in expected]
    assert [members(batch, 0, j) for j in range(batch.num_edges)] == [nodes for _, nodes in expected]
    assert batch.pairs.tolist() == [[0, 0, 1], [0, 0, 2], [0, 1, 2]]
    assert batch.labels.tolist() == [1, 2, 0]
    # pooled features: an entity is the mean of its rows; "joined" of pairs 1 and 2; "person" likewise
    alice = (pairs[0].nodes.text_features[0] + pairs[1].nodes.text_features[0]) / 2
    torch.testing.assert_close(batch.text_features[0, 0], alice)
    torch.testing.assert_close(batch.text_features[0, 2],
                               (pairs[1].nodes.text_features[1] + pairs[2].nodes.text_features[1]) / 2)
    torch.testing.assert_close(batch.text_features[0, 3],
                               (pairs[0].nodes.text_features[2] + pairs[1].nodes.text_features[2]) / 2)
    torch.testing.assert_close(batch.visual_features[0, 1],
                               (pairs[0].nodes.visual_features[1] + pairs[1].nodes.visual_features[1]) / 2)
    torch.testing.assert_close(batch.visual_features[0, 3], pairs[1].nodes.visual_features[2])


def test_switches_keep_their_meaning(generator: torch.Generator) -> None:
    pairs = three_pairs(generator)
    no_llm = collate_sentences([pairs], HypergraphConfig(scope="sentence", use_text_llm=False, use_visual_llm=False))
    assert no_llm.node_names[0][:3] == ["Alice", "Acme", "Paris"] and "joined" not in no_llm.node_names[0]
    no_inter = collate_sentences([pairs], SENTENCE.without_edges("head_visual", "tail_visual"))
    assert [name.split(":")[0] for name in no_inter.edge_names[0]] == ["global", "textual", "textual", "textual", "visual"]
    text_only = collate_sentences([pairs], HypergraphConfig(scope="sentence", use_visual=False))
    assert not text_only.modality[0].eq(1).any()
    assert not text_only.edge_mask[0, [name.startswith(("visual", "head_visual", "tail_visual"))
                                       for name in text_only.edge_names[0]]].any()


def test_one_pair_sentence_is_exactly_the_pair_scope_hypergraph(generator: torch.Generator) -> None:
    instances = [full_instance(generator), *random_instances(6, seed=4)]
    for config in (HypergraphConfig(), HypergraphConfig(use_text_llm=False), HypergraphConfig().without_edges("global")):
        pair = collate_hypergraphs(instances, config, labels=list(range(len(instances))))
        sentence = collate_sentences([[SentencePair(nodes, "h", "t")] for nodes in instances],
                                     HypergraphConfig(**{**config.__dict__, "scope": "sentence"}),
                                     [[i] for i in range(len(instances))])
        for name in [f.name for f in fields(pair) if f.name not in ("pairs", "edge_names", "tail_source")]:
            a, b = getattr(pair, name), getattr(sentence, name)
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, name
        assert torch.equal(sentence.pair_index, pair.pair_index)


def test_padding_and_errors(generator: torch.Generator) -> None:
    pairs = three_pairs(generator)
    single = [SentencePair(handmade_instance(["Bob", "Paris"], [], n_objects=0, generator=generator), "b", "p")]
    batch = collate_sentences([pairs, single], SENTENCE)
    assert batch.pairs.tolist()[-1] == [1, 0, 1]
    assert batch.edge_mask[1].sum() == 2 and batch.edge_names[1][batch.num_edges - 1] == ""  # global, textual
    with pytest.raises(ValueError, match="same entity"):
        collate_sentences([[SentencePair(pairs[0].nodes, "x", "x")]], SENTENCE)
    with pytest.raises(ValueError, match="one id per pair"):
        collate_sentences([pairs], SENTENCE, [[0]])
    with pytest.raises(ValueError, match="unknown hypergraph scope"):
        HypergraphConfig(scope="document")
