"""MNRE evaluation, exactly as every MNRE peer computes it (docs/paper_choices.md#metrics).

- accuracy = correct / all instances (``None`` included);
- precision = correct non-None predictions / non-None predictions;
- recall = correct non-None predictions / non-None gold labels;
- F1 = 2PR / (P + R), 0 when P + R = 0.

"Correct non-None" means predicted label == gold label != None. This equals scikit-learn's
micro average over the non-None labels. All values are fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Hashable, Sequence

import numpy as np


@dataclass(frozen=True)
class Scores:
    """Accuracy, precision, recall and F1 as fractions, with the counts behind them."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    n: int
    n_correct_positive: int
    n_predicted_positive: int
    n_gold_positive: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def percent(self) -> dict[str, float]:
        """The four headline metrics in percent, as papers print them."""
        return {k: 100.0 * getattr(self, k) for k in ("accuracy", "precision", "recall", "f1")}


def _arrays(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """``gold`` and ``pred`` as object arrays; ValueError when their lengths differ or they are empty."""
    if len(gold) != len(pred):
        raise ValueError(f"gold and pred differ in length: {len(gold)} vs {len(pred)}")
    if len(gold) == 0:
        raise ValueError("cannot score an empty set of predictions")
    return np.asarray(list(gold), dtype=object), np.asarray(list(pred), dtype=object)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score(gold: Sequence[Hashable], pred: Sequence[Hashable], negative: Hashable = "None") -> Scores:
    """Score predictions against gold labels; ``negative`` is the no-relation label."""
    gold_arr, pred_arr = _arrays(gold, pred)
    equal = gold_arr == pred_arr
    gold_pos = gold_arr != negative
    correct_pos, n_gold_pos = int(np.sum(equal & gold_pos)), int(np.sum(gold_pos))
    n_pred_pos = int(np.sum(pred_arr != negative))
    precision = correct_pos / n_pred_pos if n_pred_pos else 0.0
    recall = correct_pos / n_gold_pos if n_gold_pos else 0.0
    return Scores(float(np.mean(equal)), precision, recall, _f1(precision, recall), len(gold_arr),
                  correct_pos, n_pred_pos, n_gold_pos)


@dataclass(frozen=True)
class RelationScores:
    """Precision, recall, F1 and gold count (support) of one relation."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def per_relation_scores(
    gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> list[RelationScores]:
    """One-vs-rest precision/recall/F1 of each label in ``labels`` (order kept)."""
    gold_arr, pred_arr = _arrays(gold, pred)
    rows = []
    for label in labels:
        is_gold = gold_arr == label
        is_pred = pred_arr == label
        hits = int(np.sum(is_gold & is_pred))
        precision = hits / int(is_pred.sum()) if is_pred.any() else 0.0
        recall = hits / int(is_gold.sum()) if is_gold.any() else 0.0
        rows.append(RelationScores(str(label), precision, recall, _f1(precision, recall), int(is_gold.sum())))
    return rows


def confusion_matrix(
    gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> np.ndarray:
    """``C[i, j]`` = number of instances with gold ``labels[i]`` predicted as ``labels[j]``.

    Raises:
        ValueError: a gold or predicted label is not in ``labels``.
    """
    _arrays(gold, pred)
    position = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(x) for x in (*gold, *pred) if x not in position})
    if unknown:
        raise ValueError(f"labels not in the label list: {', '.join(unknown)}")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([position[g] for g in gold], [position[p] for p in pred]), 1)
    return matrix
