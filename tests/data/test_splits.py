"""Cross-fitting folds of a split: grouped by sentence, balanced, seeded."""

from __future__ import annotations

import pytest

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.data.splits import sentence_folds


def _instances(pairs_per_sentence: list[int]) -> list[Instance]:
    """Sentence s has ``pairs_per_sentence[s]`` instances (entity pairs), all sharing its tokens and image."""
    rows = []
    for sentence, pairs in enumerate(pairs_per_sentence):
        tokens = (f"w{sentence}", "and", f"v{sentence}")
        for _ in range(pairs):
            rows.append(Instance(len(rows), tokens, Entity("a", 0, 1), Entity("b", 2, 3), f"{sentence}.jpg", "None"))
    return rows


def test_folds_partition_the_split_and_keep_each_sentence_in_one_fold() -> None:
    instances = _instances([1, 3, 2, 1, 1, 4, 2, 1, 1, 2, 3, 1])
    folds = sentence_folds(instances, 3, seed=0)
    assert len(folds) == 3 and sorted(p for fold in folds for p in fold) == list(range(len(instances)))
    assert all(fold == sorted(fold) for fold in folds)
    fold_of = {p: f for f, fold in enumerate(folds) for p in fold}
    for a in range(len(instances)):
        for b in range(len(instances)):
            if instances[a].sentence_key == instances[b].sentence_key:
                assert fold_of[a] == fold_of[b]
    sizes = [len(fold) for fold in folds]
    assert max(sizes) - min(sizes) <= 4  # within the largest sentence's instances of each other


def test_folds_follow_the_seed_and_refuse_impossible_requests() -> None:
    instances = _instances([1] * 40)
    assert sentence_folds(instances, 5, 1) == sentence_folds(instances, 5, 1) != sentence_folds(instances, 5, 2)
    assert [len(fold) for fold in sentence_folds(instances, 5, 1)] == [8] * 5
    with pytest.raises(ConfigError, match="at least 2 folds, got 1"):
        sentence_folds(instances, 1, 0)
    with pytest.raises(ConfigError, match="^experiment.folds=5: 3 sentence\\(s\\) cannot fill 5 folds$"):
        sentence_folds(_instances([2, 2, 2]), 5, 0)
