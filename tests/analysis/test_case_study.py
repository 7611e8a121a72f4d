"""Case studies: the best checkpoint loads (or says what to run), predictions and attention match the
model's, pairs of a sentence are gathered, entity search is case-insensitive."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from tests.factories import TINY, handmade_instance
from vmhan_lib.analysis.case_study import CaseStudyExplorer
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph import collate_hypergraphs
from vmhan_lib.model import build_model
from vmhan_lib.train.checkpoints import MissingCheckpointError

CONFIG = TINY
LABELS = ("None", "/per/per/peer", "/per/org/member_of", "/misc/loc/held_on")
SENTENCE = ("Alice", "met", "Bob", "at", "Acme")


def _instances() -> list[Instance]:
    alice, bob, acme = Entity("Alice", 0, 1), Entity("Bob", 2, 3), Entity("Acme", 4, 5)
    return [
        Instance(0, SENTENCE, alice, bob, "a.jpg", "/per/per/peer"),
        Instance(1, SENTENCE, alice, acme, "a.jpg", "/per/org/member_of"),
        Instance(2, ("Expo", "in", "Dubai"), Entity("Expo", 0, 1), Entity("Dubai", 2, 3), "b.jpg", "/misc/loc/held_on"),
        Instance(3, SENTENCE, bob, acme, "a.jpg", "None"),
    ]


def _nodes(count: int) -> list[InstanceNodes]:
    generator = torch.Generator().manual_seed(1)
    return [
        handmade_instance(["h", "t", "span"][: 2 + i % 2], ["<image>", "obj", "llm"][: 0 if i == 2 else 3],
                          n_objects=0 if i == 2 else 1, generator=generator)  # instance 2 has no image: padded
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def explorer() -> CaseStudyExplorer:
    torch.manual_seed(0)
    model = build_model(CONFIG)
    captions = {"blip": {"a.jpg": "two people", "b.jpg": ""}, "qwen": {"a.jpg": "a meeting", "b.jpg": "a fair"}}
    return CaseStudyExplorer(model, CONFIG, _instances(), _nodes(4), LABELS, captions, {"a.jpg": Path("/img/a.jpg")})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_explorer_refuses_a_missing_or_old_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MissingCheckpointError, match="no checkpoint at"):
        CaseStudyExplorer.from_checkpoint(tmp_path / "best.pt")
    torch.save({"digest": "x", "config": {"model": {}}, "model": {}}, tmp_path / "old.pt")
    with pytest.raises(MissingCheckpointError, match="older version of the workbook"):
        CaseStudyExplorer.from_checkpoint(tmp_path / "old.pt")


def test_explain_gathers_the_pair_its_sentence_and_the_model_outputs(explorer: CaseStudyExplorer) -> None:
    case = explorer.explain(1)
    assert (case.index, case.head, case.tail, case.gold) == (1, "Alice", "Acme", "/per/org/member_of")
    assert case.marked_sentence == "[h: Alice] met Bob at [t: Acme]"
    assert [(p.position, p.head, p.tail, p.gold) for p in case.pairs] == [
        (0, "Alice", "Bob", "/per/per/peer"), (1, "Alice", "Acme", "/per/org/member_of"), (3, "Bob", "Acme", "None")]
    assert case.captions == {"blip": "two people", "qwen": "a meeting"} and case.image_path == Path("/img/a.jpg")
    alone = collate_hypergraphs([explorer.nodes[1]], CONFIG.hypergraph)
    with torch.no_grad():
        output = explorer.model(alone, return_attention=True)
    expected = dict(zip(LABELS, output.logits.softmax(-1)[0].tolist()))
    assert case.probabilities == pytest.approx(expected, abs=1e-6)  # batched prediction == alone
    assert list(case.probabilities) == sorted(expected, key=lambda k: -expected[k])
    assert case.predicted == max(expected, key=expected.get)
    assert (case.num_layers, case.num_heads) == (CONFIG.num_layers, CONFIG.heads)
    for mine, model_weights in zip(case.attention, output.attention):
        torch.testing.assert_close(mine.edge_from_nodes, model_weights.edge_from_nodes)
        torch.testing.assert_close(mine.node_from_edges, model_weights.node_from_edges)
    assert "pair: **Alice** -> **Acme**" in case.summary_markdown()
    table = case.pairs_table()
    assert table[""].tolist() == ["", ">", ""] and table["gold"].tolist() == ["/per/per/peer", "/per/org/member_of", "None"]
    assert len(case.figure(layer=-1, head=1).axes) == 3


def test_instance_without_image_or_sample_file(explorer: CaseStudyExplorer) -> None:
    case = explorer.explain(2)
    assert case.image_path is None and case.captions["blip"] == ""
    assert [p.position for p in case.pairs] == [2]
    assert "not among the sample images" in case.summary_markdown()
    with pytest.raises(IndexError, match="outside the 4"):
        explorer.explain(4)


def test_search_and_widget_options(explorer: CaseStudyExplorer) -> None:
    assert explorer.search("ACME") == [1, 3]
    assert explorer.search("bo") == [0, 3]
    assert explorer.search("nobody") == []
    assert [position for _, position in explorer.sentence_options()] == [0, 2]
    assert [position for _, position in explorer.sentence_options("dubai")] == [2]
    assert explorer.sentence_options("dubai")[0][0].startswith("#2 (1 pair) Expo in Dubai")
    assert [position for _, position in explorer.pair_options(3)] == [0, 1, 3]
    assert explorer.examples_with_several_pairs(count=2) == [0]
    assert explorer.examples_with_several_pairs(min_pairs=1) == [0, 2]
    assert explorer.examples_with_several_pairs(min_pairs=4) == []


def test_models_without_attention_still_explain() -> None:
    config = replace(CONFIG, encoder="none")
    explorer = CaseStudyExplorer(build_model(config), config, _instances(), _nodes(4), LABELS, {}, {})
    case = explorer.explain(0)
    assert case.attention == [] and case.num_heads == 0
    assert len(case.figure().axes) == 1
