from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix as sk_confusion, precision_recall_fscore_support

from vmhan_lib.metrics import confusion_matrix, per_relation_scores, score

LABELS = ["None", "a", "b", "c"]


def test_hand_made_case() -> None:
    gold = ["a", "a", "b", "None", "None", "c"]
    pred = ["a", "b", "b", "a", "None", "None"]
    s = score(gold, pred)
    # correct non-None: a, b -> 2; predicted non-None: 4; gold non-None: 4
    assert (s.n_correct_positive, s.n_predicted_positive, s.n_gold_positive) == (2, 4, 4)
    assert s.accuracy == pytest.approx(3 / 6)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(0.5) and s.f1 == pytest.approx(0.5)
    assert s.percent()["f1"] == pytest.approx(50.0)


def test_all_none_prediction() -> None:
    gold = ["None"] * 6 + ["a", "b", "c", "a"]
    s = score(gold, ["None"] * 10)
    assert s.accuracy == pytest.approx(0.6)
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_perfect_and_integer_labels() -> None:
    s = score([0, 1, 2, 0], [0, 1, 2, 0], negative=0)
    assert (s.accuracy, s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_micro_over_non_none(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = rng.choice(LABELS, size=500, p=[0.6, 0.2, 0.15, 0.05]).tolist()
    pred = [g if rng.random() < 0.6 else rng.choice(LABELS) for g in gold]
    s = score(gold, pred)
    p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=LABELS[1:], average="micro", zero_division=0)
    assert (s.precision, s.recall, s.f1) == pytest.approx((p, r, f))
    assert s.accuracy == pytest.approx(accuracy_score(gold, pred))
    rows = per_relation_scores(gold, pred, LABELS)
    p_each, r_each, f_each, support = precision_recall_fscore_support(gold, pred, labels=LABELS, zero_division=0)
    assert [row.precision for row in rows] == pytest.approx(p_each.tolist())
    assert [row.recall for row in rows] == pytest.approx(r_each.tolist())
    assert [row.f1 for row in rows] == pytest.approx(f_each.tolist())
    assert [row.support for row in rows] == support.tolist()
    assert (confusion_matrix(gold, pred, LABELS) == sk_confusion(gold, pred, labels=LABELS)).all()


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        score(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        score([], [])
    with pytest.raises(ValueError, match="not in the label list: zzz"):
        confusion_matrix(["a"], ["zzz"], LABELS)
