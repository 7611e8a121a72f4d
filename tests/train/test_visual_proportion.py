from __future__ import annotations


import pytest
import torch

import vmhan_lib.train.visual_proportion as vp
from tests.factories import random_split
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.config import HypergraphConfig, NodeRole
from vmhan_lib.train.hypergraph_task import SplitNodes

PROPORTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture
def data() -> dict[str, SplitNodes]:
    shape = dict(num_classes=3, d_text=6, d_visual=5, n_text=3, n_visual=4)
    return {"train": random_split(40, 0, **shape), "val": random_split(20, 1, **shape),
            "test": random_split(20, 2, **shape)}


def test_keep_mask_is_deterministic_sized_and_nested() -> None:
    masks = {p: vp.visual_keep_mask(10, p, seed=7) for p in PROPORTIONS}
    assert [int(m.sum()) for m in masks.values()] == [0, 2, 5, 8, 10]  # round half to even: 2.5 -> 2, 7.5 -> 8
    assert (vp.visual_keep_mask(10, 0.5, seed=7) == masks[0.5]).all()
    assert not (vp.visual_keep_mask(10, 0.5, seed=8) == masks[0.5]).all()
    for low, high in zip(PROPORTIONS, PROPORTIONS[1:]):
        assert not (masks[low] & ~masks[high]).any()
    with pytest.raises(ValueError, match="proportion"):
        vp.visual_keep_mask(10, 1.5, seed=0)


def test_with_visual_proportion_strips_visual_nodes_of_the_others(data) -> None:
    half = vp.with_visual_proportion(data, 0.5, seed=3)
    for name, split in half.items():
        kept = [n.has_image for n in split.nodes]
        assert sum(kept) == len(split.nodes) // 2
        assert split.labels == data[name].labels and split.indices == data[name].indices
        for original, changed in zip(data[name].nodes, split.nodes):
            assert torch.equal(original.text_features, changed.text_features)
            if changed.has_image:
                assert changed is original
            else:
                assert tuple(changed.visual_features.shape) == (0, 5)
                assert changed.n_objects == 0 and changed.visual_names == []
    assert [n.has_image for n in half["val"].nodes] != [n.has_image for n in half["test"].nodes]
    assert [n.has_image for n in vp.with_visual_proportion(data, 0.5, seed=3)["train"].nodes] == \
        [n.has_image for n in half["train"].nodes]
    assert not any(n.has_image for n in vp.with_visual_proportion(data, 0.0, seed=3)["test"].nodes)
    batch = collate_hypergraphs(half["train"].nodes[:8], HypergraphConfig())
    kept = [n.has_image for n in half["train"].nodes[:8]]
    image_slots = batch.node_role == NodeRole.IMAGE  # [B, N]: a stripped instance has no image node at all
    assert image_slots.any(dim=1).tolist() == kept and kept.count(True) not in (0, 8)
