"""Hypergraph construction (Eq. 1-3) and padded batching, against hypergraphs written out by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vmhan_lib.hypergraph.batch import TAIL_SLOT, collate_hypergraphs
from vmhan_lib.hypergraph.config import EDGE_TYPES, HypergraphConfig, Modality, NodeRole

from tests.factories import (
    D_TEXT, D_VISUAL, FULL_MEMBERS, TEXT_ONLY_MEMBERS, full_instance, handmade_instance, text_only_instance,
)


def members(incidence: torch.Tensor, b: int, j: int) -> set[int]:
    return {i for i in range(incidence.shape[1]) if incidence[b, i, j] == 1}


def test_incidence_matches_eq_1_to_3_written_out(generator: torch.Generator) -> None:
    batch = collate_hypergraphs([full_instance(generator), text_only_instance(generator)])
    assert batch.edge_types == EDGE_TYPES
    assert batch.incidence.shape == (2, 10, 5)
    for j, name in enumerate(EDGE_TYPES):
        assert members(batch.incidence, 0, j) == FULL_MEMBERS[name], name
        assert members(batch.incidence, 1, j) == TEXT_ONLY_MEMBERS[name], name
    assert batch.edge_mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    assert set(batch.incidence.unique().tolist()) <= {0.0, 1.0}


def test_layout_roles_modality_names(generator: torch.Generator) -> None:
    full, text_only = full_instance(generator), text_only_instance(generator)
    batch = collate_hypergraphs([full, text_only], labels=[3, 0])
    assert batch.text_features.shape == (2, 4, D_TEXT) and batch.visual_features.shape == (2, 6, D_VISUAL)
    roles = [NodeRole.HEAD, NodeRole.TAIL, NodeRole.TEXT_LLM, NodeRole.TEXT_LLM, NodeRole.IMAGE,
             NodeRole.OBJECT, NodeRole.OBJECT, NodeRole.OBJECT, NodeRole.VISUAL_LLM, NodeRole.VISUAL_LLM]
    assert batch.node_role[0].tolist() == [int(r) for r in roles]
    assert batch.node_role[1].tolist() == [0, 1] + [-1] * 8
    assert batch.modality[0].tolist() == [Modality.TEXT] * 4 + [Modality.VISUAL] * 6
    assert batch.node_mask[1].tolist() == [True, True] + [False] * 8
    # every node is kept, in the given order: the image, the objects, then the visual-LLM nodes
    assert batch.node_names[0][4:] == ["<image>", "person", "logo", "desk", "smiling", "handshake"]
    assert torch.equal(batch.visual_features[0], full.visual_features)
    assert torch.equal(batch.text_features[0], full.text_features)
    assert torch.count_nonzero(batch.visual_features[1]) == 0 and torch.count_nonzero(batch.text_features[1, 2:]) == 0
    assert batch.labels.tolist() == [3, 0]


def test_switched_off_edge_types_have_no_column(generator: torch.Generator) -> None:
    config = HypergraphConfig().without_edges("global", "tail_visual")
    batch = collate_hypergraphs([full_instance(generator)], config)
    assert batch.edge_types == ("textual", "visual", "head_visual")
    assert batch.incidence.shape[-1] == 3
    assert members(batch.incidence, 0, 2) == FULL_MEMBERS["head_visual"]


def test_edge_types_are_put_in_fixed_order() -> None:
    assert HypergraphConfig(edge_types=("tail_visual", "global")).edge_types == ("global", "tail_visual")


def test_dropping_llm_nodes_and_visual_nodes(generator: torch.Generator) -> None:
    full = full_instance(generator)
    no_text_llm = collate_hypergraphs([full], HypergraphConfig(use_text_llm=False))
    assert NodeRole.TEXT_LLM not in no_text_llm.node_role.tolist() and no_text_llm.num_text_slots == 2
    no_visual_llm = collate_hypergraphs([full], HypergraphConfig(use_visual_llm=False))
    assert NodeRole.VISUAL_LLM not in no_visual_llm.node_role.tolist()
    assert no_visual_llm.node_names[0][4:] == ["<image>", "person", "logo", "desk"]
    no_visual = collate_hypergraphs([full], HypergraphConfig(use_visual=False))
    assert no_visual.visual_features.shape == (1, 0, D_VISUAL)
    assert no_visual.edge_mask.tolist() == [[True, True, False, False, False]]


def test_instance_without_image_keeps_objects(generator: torch.Generator) -> None:
    nodes = handmade_instance(["h", "t"], ["cup", "table"], n_objects=2, generator=generator)
    assert not nodes.has_image
    batch = collate_hypergraphs([nodes])
    assert batch.node_role[0].tolist() == [0, 1, NodeRole.OBJECT, NodeRole.OBJECT]
    assert members(batch.incidence, 0, EDGE_TYPES.index("head_visual")) == {0, 2, 3}


def test_to_moves_every_tensor(generator: torch.Generator) -> None:
    batch = collate_hypergraphs([full_instance(generator)], labels=[1]).to("cpu")
    assert batch.labels.device.type == "cpu" and batch.incidence.device.type == "cpu"
    moved = batch.to(torch.device("meta"))
    assert all(t.device.type == "meta" for t in (moved.text_features, moved.incidence, moved.edge_mask, moved.labels))
    assert moved.node_names == batch.node_names


def test_errors_name_the_allowed_values(generator: torch.Generator) -> None:
    with pytest.raises(ValueError, match="allowed: global, textual, visual, head_visual, tail_visual"):
        HypergraphConfig(edge_types=("global", "cross"))
    with pytest.raises(ValueError, match="allowed"):
        HypergraphConfig().without_edges("textaul")
    with pytest.raises(ValueError, match="empty"):
        collate_hypergraphs([])
    with pytest.raises(ValueError, match="one id per instance"):
        collate_hypergraphs([full_instance(generator)], labels=[1, 2])


def test_padded_slots_have_padding_modality(generator: torch.Generator) -> None:
    batch = collate_hypergraphs([full_instance(generator), text_only_instance(generator)])
    assert batch.modality[1].tolist() == [Modality.TEXT] * 2 + [Modality.PADDING] * 8
    assert batch.node_names[1] == ["Bob", "Paris"] + [""] * 8


def test_tail_source_points_at_the_kept_slot_of_the_tails_object(generator: torch.Generator) -> None:
    with_logo_tail = replace(full_instance(generator), tail_visual_row=2)  # visual row 2 = "logo"
    no_image = replace(handmade_instance(["h", "t"], ["cup", "table"], n_objects=2, generator=generator),
                       tail_visual_row=1)  # visual row 1 = "table"
    instances = [with_logo_tail, text_only_instance(generator), no_image]
    batch = collate_hypergraphs(instances)
    assert batch.tail_source.tolist() == [4 + 2, TAIL_SLOT, 4 + 1]  # N_t = 4 text slots, then the visual slots
    assert batch.node_names[0][batch.tail_source[0]] == "logo" and batch.node_names[2][5] == "table"
    no_visual = collate_hypergraphs(instances, HypergraphConfig(use_visual=False))
    assert no_visual.tail_source.tolist() == [TAIL_SLOT] * 3  # the tail's object is not kept
    assert collate_hypergraphs([full_instance(generator)]).tail_source is None


def test_mismatched_widths_and_labels_are_refused(generator: torch.Generator) -> None:
    with pytest.raises(ValueError, match=r"instance 1 has widths \(5, 7\), expected"):
        collate_hypergraphs([full_instance(generator), text_only_instance(generator, d_text=5, d_visual=7)])
    with pytest.raises(ValueError, match=r"one id per instance \(2\), got shape \(3,\)"):
        collate_hypergraphs([full_instance(generator), text_only_instance(generator)], labels=[0, 1, 2])
