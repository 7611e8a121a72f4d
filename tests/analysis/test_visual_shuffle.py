"""The visual-shuffle test (arXiv 2211.07504): derangements, the swap itself, and models that
provably do / do not read their visual nodes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.factories import TINY, random_split
from vmhan_lib.analysis.visual_shuffle import shuffle_visual_nodes, visual_derangement, visual_shuffle_test
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.hypergraph.batch import HypergraphBatch
from vmhan_lib.model.variants import variant_config
from vmhan_lib.model.vmhan import ModelOutput, build_model
from vmhan_lib.train.hypergraph_task import SplitNodes, predict_nodes

VOCAB = RelationVocab(("None", "a", "b", "c"))
R = len(VOCAB)


class Oracle(nn.Module):
    """Logits = the first R coordinates of one node's raw features: the image node (``visual``) or
    the head (``text``). Its output depends on exactly that node and nothing else."""

    def __init__(self, reads: str) -> None:
        super().__init__()
        self.reads = reads

    def forward(self, batch: HypergraphBatch) -> ModelOutput:
        features = batch.visual_features if self.reads == "visual" else batch.text_features
        logits = features[:, 0, :R]  # [B, R]
        zeros = torch.zeros(*batch.node_mask.shape, 1)
        return ModelOutput(logits, zeros, None, zeros, None, batch.node_mask)


def _labelled_split(n: int = 60) -> SplitNodes:
    """Every instance has an image; its image node and its head both carry its label (+5 on that
    coordinate), everything else is noise."""
    split = random_split(n, seed=3, n_visual=4)
    for nodes, label in zip(split.nodes, split.labels):
        nodes.visual_features[0, :R] = 0.1 * nodes.visual_features[0, :R]
        nodes.visual_features[0, label] += 5.0
        nodes.text_features[0, :R] = 0.1 * nodes.text_features[0, :R]
        nodes.text_features[0, label] += 5.0
    return split


def test_derangements_move_every_instance_and_follow_the_seed() -> None:
    for n in (2, 3, 17):
        source = visual_derangement(n, seed=1)
        assert sorted(source) == list(range(n)) and all(source[i] != i for i in range(n))
    assert visual_derangement(50, 4) == visual_derangement(50, 4) != visual_derangement(50, 5)
    with pytest.raises(ValueError, match="at least 2 instances"):
        visual_derangement(1, 0)


def test_the_swap_takes_the_visual_side_and_keeps_the_text_side() -> None:
    split = random_split(5, seed=0)
    source = visual_derangement(5, seed=0)
    swapped = shuffle_visual_nodes(split.nodes, source)
    for i, j in enumerate(source):
        assert torch.equal(swapped[i].visual_features, split.nodes[j].visual_features)
        assert (swapped[i].n_objects, swapped[i].has_image) == (split.nodes[j].n_objects, split.nodes[j].has_image)
        assert swapped[i].visual_names == split.nodes[j].visual_names
        assert torch.equal(swapped[i].text_features, split.nodes[i].text_features)
        assert swapped[i].text_names == split.nodes[i].text_names
    with pytest.raises(ValueError, match="permutation"):
        shuffle_visual_nodes(split.nodes, [0, 0, 1, 2, 3])


def test_a_model_reading_its_image_loses_when_images_are_shuffled() -> None:
    split = _labelled_split()
    result = visual_shuffle_test(Oracle("visual"), TINY, split, VOCAB, seeds=(0, 1, 2))
    assert result.normal["f1"] == 1.0 and result.normal["accuracy"] == 1.0
    for shuffled, seed in zip(result.shuffled, result.seeds):
        # instance i is now scored with instance p(i)'s label: right only where the two labels agree
        source = visual_derangement(len(split.labels), seed)
        agree = sum(split.labels[i] == split.labels[j] for i, j in enumerate(source)) / len(source)
        assert shuffled["accuracy"] == pytest.approx(agree)
        assert shuffled["f1"] < 0.6
    mean, std = result.f1_drop()
    assert mean > 40 and std >= 0
    assert result.row()["f1_drop"] == mean and result.row()["f1"] == 100.0


def test_a_model_ignoring_visual_nodes_scores_exactly_the_same() -> None:
    split = _labelled_split()
    result = visual_shuffle_test(Oracle("text"), TINY, split, VOCAB, seeds=(0, 1))
    assert result.normal["f1"] == 1.0 and all(s == result.normal for s in result.shuffled)
    assert result.f1_drop() == (0.0, 0.0)
    # a real model without visual nodes (Text-only: the hypergraph drops them) is just as blind
    torch.manual_seed(0)
    text_only = variant_config("Text-only", TINY)
    model = build_model(text_only)
    same = visual_shuffle_test(model, text_only, split, VOCAB, seeds=(0,))
    assert same.shuffled == [same.normal]


def test_vmhan_output_depends_on_the_visual_nodes() -> None:
    split = _labelled_split(20)
    torch.manual_seed(0)
    model = build_model(TINY)
    normal = predict_nodes(model, split.nodes, TINY, 64, torch.device("cpu")).probabilities
    swapped = shuffle_visual_nodes(split.nodes, visual_derangement(20, 0))
    shuffled = predict_nodes(model, swapped, TINY, 64, torch.device("cpu")).probabilities
    assert not torch.allclose(normal, shuffled, atol=1e-4)


def test_sentence_says_which_way_the_numbers_go(tmp_path) -> None:
    import pandas as pd

    from vmhan_lib.analysis import visual_shuffle as vs

    row = {"variant": "VM-HAN (Ours)", "seed": 0, "training": "two-stage", "encoder": "all-MiniLM-L6-v2",
           "visual_source": "captions", "f1": 62.17, "shuffled_f1": 62.34, "shuffled_f1_std": 0.1, "f1_drop": -0.17,
           "f1_drop_std": 0.1, "permutations": 5}
    table = pd.DataFrame([row, {**row, "seed": 1, "shuffled_f1": 55.0, "f1_drop": 7.17}])
    sentence = vs.shuffle_sentence(table)
    assert "a drop of -0.17 points: no sign that it uses the image of its instance." in sentence
    assert "seed 1" in sentence and "a drop of 7.17 points: it reads its own image." in sentence
    assert "nothing to score" in vs.shuffle_sentence(table.iloc[:0])

    assert vs.shuffle_results([], tmp_path).empty  # no runs asked: nothing computed, nothing written
    assert not (tmp_path / vs.SHUFFLE_FILE).exists()
    with pytest.raises(ValueError, match="permutations must be >= 1"):
        vs.shuffle_results([], tmp_path, permutations=0)
