"""The captioner comparison's linear probe and bootstrap interval on synthetic features, and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from vmhan_lib.analysis.captioner_choice import (
    _bootstrap_f1, _linear_probe_dev_scores, _probe_result, compare_captioners,
)

LABELS = ["None", "/per/per/peer", "/per/org/member_of"]


def _features(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Three well-separated clusters, one per label, in 8 dimensions."""
    generator = np.random.default_rng(seed)
    rows = generator.integers(0, len(LABELS), n)
    centres = 10 * np.eye(len(LABELS), 8)
    return centres[rows] + generator.normal(size=(n, 8)), [LABELS[r] for r in rows]


def test_probe_separates_separable_classes_and_the_interval_holds_the_f1() -> None:
    train_x, train_y = _features(90, seed=0)
    dev_x, dev_y = _features(40, seed=1)
    scores, predictions = _linear_probe_dev_scores(train_x, train_y, dev_x, dev_y, seed=13)
    assert scores.f1 == 1.0 and list(predictions) == dev_y
    assert _bootstrap_f1(dev_y, predictions, n_resamples=50, seed=13) == (100.0, 100.0)
    noisy = predictions.copy()
    noisy[:10] = "None"
    low, high = _bootstrap_f1(dev_y, noisy, n_resamples=200, seed=13)
    assert 0.0 <= low <= high <= 100.0 and low < 100.0


def test_probe_result_scores_the_entity_features_with_the_extra_ones_appended() -> None:
    train_x, train_y = _features(90, seed=0)
    dev_x, dev_y = _features(40, seed=1)
    noise = np.random.default_rng(2)
    entity = {"train": noise.normal(size=(90, 4)), "val": noise.normal(size=(40, 4))}  # says nothing of the label
    labels = {"train": train_y, "val": dev_y}
    with_signal = _probe_result(entity, labels, {"train": train_x, "val": dev_x}, seed=13, n_bootstrap=50)
    assert with_signal == {"accuracy": 100.0, "precision": 100.0, "recall": 100.0, "f1": 100.0,
                           "f1_95ci": [100.0, 100.0]}
    text_only = _probe_result(entity, labels, None, seed=13, n_bootstrap=50)
    assert text_only["f1"] < 80.0 and text_only["f1_95ci"][0] <= text_only["f1"] <= text_only["f1_95ci"][1]


def test_unknown_captioners_are_rejected_before_any_work() -> None:
    with pytest.raises(ValueError, match="non-empty subset"):
        compare_captioners(captioners=("nope",))
    with pytest.raises(ValueError, match="non-empty subset"):
        compare_captioners(captioners=())
