from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.data.mnre import load_mnre, load_relation_vocab
from vmhan_lib.data.statistics import dataset_statistics, split_statistics


def test_tiny_split_statistics(tiny_mnre: Path) -> None:
    stats = split_statistics(load_mnre(tiny_mnre, "train"), load_relation_vocab(tiny_mnre))
    assert stats["instances"] == 4 and stats["images"] == 2 and stats["sentences"] == 2
    assert stats["none_instances"] == 1 and stats["none_share"] == pytest.approx(0.25)
    assert stats["pairs_per_sentence"] == {"1": 1, "3": 1}
    assert stats["relation_counts"]["/per/per/peer"] == 1
    # Alice: 2 relations; Bob, Acme, Expo 2020, Dubai: 1 each
    assert stats["entities_with_several_relations"] == 1 and stats["entities_with_one_relation"] == 4


@pytest.mark.real_data
def test_real_statistics_match_the_data_readme(mnre_dir: Path) -> None:
    stats = dataset_statistics(mnre_dir)
    splits = stats["splits"]
    assert [splits[s]["images"] for s in ("train", "val", "test")] == [7356, 931, 914]
    assert splits["train"]["none_share"] == pytest.approx(0.632, abs=5e-4)
    assert splits["test"]["none_instances"] == 974 and splits["test"]["non_none_instances"] == 640
    assert set(splits["test"]["relations_absent"]) == {"/per/per/alumi", "/per/misc/race"}
    assert stats["all_none_accuracy_test"] == pytest.approx(0.6035, abs=5e-5)
    assert set(stats["images_shared_between_splits"].values()) == {0}
    for s in splits.values():  # one sentence per image; 1-21 pairs per sentence
        assert s["sentences"] == s["images"] and s["images_with_several_sentences"] == 0
        assert sum(int(k) * v for k, v in s["pairs_per_sentence"].items()) == s["instances"]
    assert splits["train"]["pairs_per_sentence_max"] == 21
