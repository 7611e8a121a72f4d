from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import vmhan_lib.train.visual_proportion as vp
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.hypergraph.config import HypergraphConfig
from vmhan_lib.train.config import TrainConfig
from vmhan_lib.train.experiment import experiment_plan
from vmhan_lib.train.loop import SplitNodes
from vmhan_lib.train.records import read_predictions

VOCAB = RelationVocab(("None", "a", "b"))


def _split(n: int, seed: int) -> SplitNodes:
    g = torch.Generator().manual_seed(seed)
    nodes, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, 3, (1,), generator=g))
        text = torch.randn(3, 6, generator=g)
        text[0, label] += 3.0
        nodes.append(InstanceNodes(text_features=text, visual_features=torch.randn(4, 5, generator=g),
                                   text_names=["h", "t", "x"], visual_names=["<image>", "o1", "o2", "llm"],
                                   n_objects=2, has_image=True))
        labels.append(label)
    return SplitNodes(nodes, labels, list(range(n)))


@pytest.fixture
def data() -> dict[str, SplitNodes]:
    return {"train": _split(40, 0), "val": _split(20, 1), "test": _split(20, 2)}


def test_keep_mask_is_deterministic_sized_and_nested() -> None:
    masks = {p: vp.visual_keep_mask(10, p, seed=7) for p in vp.VISUAL_PROPORTIONS}
    assert [int(m.sum()) for m in masks.values()] == [0, 2, 5, 8, 10]  # round half to even: 2.5 -> 2, 7.5 -> 8
    assert (vp.visual_keep_mask(10, 0.5, seed=7) == masks[0.5]).all()
    assert not (vp.visual_keep_mask(10, 0.5, seed=8) == masks[0.5]).all()
    for low, high in zip(vp.VISUAL_PROPORTIONS, vp.VISUAL_PROPORTIONS[1:]):
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
    assert batch is not None


def test_runs_train_once_then_are_reused_without_loading(tmp_path: Path, data, monkeypatch) -> None:
    plan = replace(experiment_plan("tiny"), runs_dir=tmp_path / "runs", model_preset="tiny",
                   train=TrainConfig(epochs=1, batch_size=16, lr=1e-2, device="cpu"), seeds=(0, 1))
    loads = {"n": 0}

    def fake_prepare(plan_, progress):
        loads["n"] += 1
        return data, {"features": {}}

    monkeypatch.setattr(vp, "prepare_inputs", fake_prepare)
    monkeypatch.setattr(vp, "load_relation_vocab", lambda path: VOCAB)
    monkeypatch.setattr(vp, "CHECKPOINT_DIR", tmp_path / "ckpt")
    records = vp.run_visual_proportion(plan, proportions=(0.0, 1.0), progress=False)
    assert loads["n"] == 1
    assert [(r["variant"], r["seed"]) for r in records] == [
        ("VM-HAN (Ours) @ visual 0%", 0), ("VM-HAN (Ours) @ visual 0%", 1),
        ("VM-HAN (Ours) @ visual 100%", 0), ("VM-HAN (Ours) @ visual 100%", 1)]
    assert [r["config"]["visual_proportion"] for r in records] == [0.0, 0.0, 1.0, 1.0]
    run_dir = tmp_path / "visual_proportion" / "tiny__vm-han-ours-visual-0__seed0"
    assert [p.index for p in read_predictions(run_dir)] == data["test"].indices
    again = vp.run_visual_proportion(plan, proportions=(0.0, 1.0), progress=False)
    assert loads["n"] == 1 and [r["test"] for r in again] == [r["test"] for r in records]
    assert np.isfinite([r["test"]["f1"] for r in again]).all()
