"""The hypergraph pictures draw exactly the batch's incidence and the model's attention, real nodes only."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vmhan_lib.analysis.hypergraph_view import (
    attention_matrices,
    draw_hypergraph,
    draw_hypergraph_attention,
    draw_edge_switches,
    draw_incidence,
    draw_scopes,
    hyperedge_members,
    instance_incidence,
)
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.config import HypergraphConfig, NodeRole
from vmhan_lib.hypergraph.sentence import SentencePair, collate_sentences
from vmhan_lib.model.vmhan import build_model

from tests.factories import TINY as CONFIG
from tests.factories import handmade_instance, text_only_instance


def _instances() -> list[InstanceNodes]:
    """A smaller full instance (h, t, 1 text-LLM span; image, 2 objects, 1 visual-LLM node), then a text-only one."""
    generator = torch.Generator().manual_seed(0)
    full = handmade_instance(["Alice", "Acme", "joined"], ["<image>", "person", "logo", "smiling"], n_objects=2,
                             generator=generator, d_text=CONFIG.d_text, d_visual=CONFIG.d_visual)
    return [full, text_only_instance(generator, d_text=CONFIG.d_text, d_visual=CONFIG.d_visual)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def batch_and_attention():
    batch = collate_hypergraphs(_instances(), CONFIG.hypergraph)
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    with torch.no_grad():
        attention = model(batch, return_attention=True).attention
    return batch, attention


def _heatmap_data(ax: plt.Axes) -> np.ma.MaskedArray:
    return ax.images[0].get_array()


@pytest.mark.parametrize("index, names", [(0, ["Alice", "Acme", "joined", "<image>", "person", "logo", "smiling"]),
                                          (1, ["Bob", "Paris"])])
def test_incidence_heatmap_is_the_batch_incidence_of_real_nodes(batch_and_attention, index, names) -> None:
    batch, _ = batch_and_attention
    fig = draw_incidence(batch, index)
    ax = fig.axes[0]
    real = batch.node_mask[index]
    np.testing.assert_array_equal(_heatmap_data(ax).data, batch.incidence[index][real].numpy())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [label.split(" (")[0] for label in labels] == names
    assert [t.get_text().split(" ")[0] for t in ax.get_xticklabels()] == list(batch.edge_types)


def test_instance_view_drops_padded_slots_and_marks_empty_edges(batch_and_attention) -> None:
    batch, _ = batch_and_attention
    view = instance_incidence(batch, 1)
    assert batch.num_nodes == 7 and view.slots == (0, 1)  # 5 padded slots dropped
    assert view.node_roles == (NodeRole.HEAD, NodeRole.TAIL)
    assert view.edge_labels == ["global", "textual", "visual (empty)", "head_visual (empty)", "tail_visual (empty)"]
    with pytest.raises(IndexError):
        instance_incidence(batch, 2)


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("layer, head", [(0, 0), (1, 1)])
def test_attention_heatmaps_draw_the_model_weights(batch_and_attention, index, layer, head) -> None:
    batch, attention = batch_and_attention
    real = batch.node_mask[index]
    expected = {
        "edge_from_nodes": attention[layer].edge_from_nodes[index, head].T[real].numpy(),
        "node_from_edges": attention[layer].node_from_edges[index, head][real].numpy(),
    }
    member = batch.incidence[index][real].numpy() > 0
    fig = draw_hypergraph_attention(batch, index, attention, layer, head)
    for ax_index, direction in zip([1, 2], ("edge_from_nodes", "node_from_edges")):
        drawn = _heatmap_data(fig.axes[ax_index])
        np.testing.assert_allclose(drawn.data[member], expected[direction][member], rtol=1e-6)
        np.testing.assert_array_equal(np.ma.getmaskarray(drawn), ~member)
    matrices = attention_matrices(attention, batch, index, layer, head)
    np.testing.assert_allclose(matrices["node_from_edges"].sum(axis=1), 1.0, rtol=1e-5)  # Eq. 7 rows
    present = batch.edge_mask[index].numpy()
    np.testing.assert_allclose(matrices["edge_from_nodes"].sum(axis=0)[present], 1.0, rtol=1e-5)  # Eq. 5 columns


def test_bipartite_drawing_has_one_link_per_membership_weighted_by_attention(batch_and_attention) -> None:
    batch, attention = batch_and_attention
    plain = draw_hypergraph(batch, 0)
    assert len(plain.axes[0].lines) == int(batch.incidence[0].sum())
    weighted = draw_hypergraph(batch, 0, attention, layer=1, head=0)
    widths = sorted(line.get_linewidth() for line in weighted.axes[0].lines)
    weights = attention[1].node_from_edges[0, 0][batch.incidence[0] > 0]
    np.testing.assert_allclose(widths, sorted((0.5 + 4.5 * weights).tolist()), rtol=1e-5)
    texts = {t.get_text() for t in weighted.axes[0].texts}
    assert {"Alice", "Acme", "<image>", "global", "tail_visual"} <= texts


def test_bad_requests_are_clear_errors(batch_and_attention) -> None:
    batch, attention = batch_and_attention
    with pytest.raises(ValueError, match="only V-HAN"):
        attention_matrices([], batch, 0, 0, 0)
    with pytest.raises(IndexError, match="layer 2"):
        attention_matrices(attention, batch, 0, 2, 0)
    with pytest.raises(IndexError, match="head 5"):
        attention_matrices(attention, batch, 0, 0, 5)
    with pytest.raises(ValueError, match="unknown direction"):
        draw_hypergraph(batch, 0, attention, direction="sideways")


def test_switched_off_edge_types_have_no_column() -> None:
    batch = collate_hypergraphs(_instances(), HypergraphConfig().without_edges("global", "visual"))
    fig = draw_incidence(batch, 0)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["textual", "head_visual", "tail_visual"]
    assert _heatmap_data(fig.axes[0]).shape == (7, 3)


def test_hyperedge_members_follow_eq_1_to_3(batch_and_attention) -> None:
    batch, _ = batch_and_attention
    visual = ["<image>", "person", "logo", "smiling"]
    assert hyperedge_members(batch, 0) == {
        "global": ["Alice", "Acme", "joined", *visual], "textual": ["Alice", "Acme", "joined"], "visual": visual,
        "head_visual": ["Alice", *visual], "tail_visual": ["Acme", *visual],
    }
    assert hyperedge_members(batch, 1)["head_visual"] == []


def test_edge_switch_panels_equal_the_collated_incidence_without_those_edges() -> None:
    instance = _instances()[0]
    fig = draw_edge_switches(instance)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels[:2]] == ["all hyperedges", "w/o global"]
    assert panels[-1].get_title() == "w/o head_visual + tail_visual"
    expected = collate_hypergraphs([instance], HypergraphConfig().without_edges("textual", "visual")).incidence[0]
    np.testing.assert_array_equal(_heatmap_data(panels[-2]).data, expected.numpy())
    assert len(panels) == 8


def test_sentence_scope_views_keep_the_named_columns_and_draw_both_scopes() -> None:
    generator = torch.Generator().manual_seed(3)
    pairs = [handmade_instance(["Alice", "Acme", "joined"], ["<image>", "person"], n_objects=1, generator=generator),
             handmade_instance(["Alice", "Paris"], ["<image>", "tower"], n_objects=1, generator=generator)]
    sentences = [[SentencePair(pairs[0], "alice", "acme"), SentencePair(pairs[1], "alice", "paris")],
                 [SentencePair(text_only_instance(generator), "bob", "paris")]]
    batch = collate_sentences(sentences, HypergraphConfig(scope="sentence"))
    view = instance_incidence(batch, 1)  # the one-pair text-only sentence: padded columns dropped
    assert view.edge_names == ("global", "textual: Bob – Paris", "visual", "head_visual: Bob", "tail_visual: Paris")
    assert view.edge_types == ("global", "textual", "visual", "head_visual", "tail_visual")
    members = hyperedge_members(batch, 0)
    assert members["textual: Alice – Acme"] == ["Alice", "Acme", "joined"]
    assert members["head_visual: Alice"] == ["Alice", "<image>", "person", "tower"]
    torch.manual_seed(0)
    model = build_model(CONFIG.with_hypergraph(scope="sentence")).eval()
    with torch.no_grad():
        attention = model(batch, return_attention=True).attention
    matrices = attention_matrices(attention, batch, 1, layer=0, head=0)
    assert matrices["node_from_edges"].shape == (2, 5)  # Bob, Paris x the five named columns
    figure = draw_scopes(collate_hypergraphs(pairs, HypergraphConfig()), batch, 0)
    assert len(figure.axes) == 3 and figure.axes[2].get_title().startswith("sentence scope: 2 pairs")
    assert len(figure.axes[2].lines) == int(batch.incidence[0].sum())
