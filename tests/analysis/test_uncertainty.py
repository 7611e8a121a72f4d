from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vmhan_lib.analysis import analysis_plots
from vmhan_lib.analysis import uncertainty as un

matplotlib.use("Agg")


def _predictions(variance: list[float], wrong: list[bool], seed: int = 0, confidence: float = 0.6) -> pd.DataFrame:
    return pd.DataFrame({"variant": "VM-HAN (Ours)", "seed": seed, "index": range(len(variance)), "gold": "a",
                         "predicted": ["b" if w else "a" for w in wrong], "confidence": confidence,
                         "variance": variance})


def test_auroc_matches_sklearn_with_ties_and_is_nan_for_one_class() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=200).astype(float)  # many ties
    labels = rng.random(200) < 0.3 + 0.08 * scores
    assert un.auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert math.isnan(un.auroc(scores, np.zeros(200, dtype=bool)))


def test_error_detection_per_run_and_nan_note(capsys) -> None:
    rng = np.random.default_rng(2)
    variance = rng.random(50)
    wrong = rng.random(50) < variance
    frame = pd.concat([_predictions(list(variance), list(wrong), seed=0),
                       _predictions([0.1, 0.2, 0.3], [False, False, False], seed=1)])
    table = un.error_detection_auroc(frame).set_index("seed")
    assert table.loc[0, "auroc_variance"] == pytest.approx(roc_auc_score(wrong, variance))
    assert table.loc[0, "errors"] == wrong.sum()
    assert table.loc[0, "auroc_1_minus_confidence"] == pytest.approx(0.5)  # constant confidence: no information
    assert math.isnan(table.loc[1, "auroc_variance"]) and "no prediction is wrong" in capsys.readouterr().out


def test_error_rate_by_variance_bin_uses_quantiles_within_each_run() -> None:
    run0 = _predictions([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [False] * 8 + [True] * 2, seed=0)
    run1 = _predictions([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], [True] + [False] * 9, seed=1)
    table = un.error_rate_by_variance_bin(pd.concat([run0, run1]), n_bins=5).set_index("bin")
    assert table["n"].tolist() == [4, 4, 4, 4, 4]
    assert table["errors"].tolist() == [1, 0, 0, 0, 2]
    assert table.loc[5, "error_rate"] == 0.5 and table.loc[1, "variance_min"] == 1
    with pytest.raises(ValueError, match="variance"):
        un.error_rate_by_variance_bin(run0.assign(variance=np.nan))
    assert analysis_plots.variance_vs_error(table.reset_index(), un.error_detection_auroc(run0)).axes


def test_expected_calibration_error_hand_example() -> None:
    confidence = np.array([0.95, 0.85, 0.65, 0.62, 0.25])
    correct = np.array([True, False, True, False, False])
    # bins (0.9,1]: |1 - .95|; (0.8,0.9]: |0 - .85|; (0.6,0.7]: 2 x |0.5 - 0.635|; (0.2,0.3]: |0 - .25|
    expected = (0.05 + 0.85 + 2 * 0.135 + 0.25) / 5
    assert un.expected_calibration_error(confidence, correct, n_bins=10) == pytest.approx(expected)
    table = un.reliability_table(confidence, correct, n_bins=10)
    assert table["n"].tolist() == [0, 0, 1, 0, 0, 0, 2, 0, 1, 1]
    assert table.loc[6, "mean_confidence"] == pytest.approx(0.635) and table.loc[6, "accuracy"] == 0.5
    assert math.isnan(table.loc[0, "accuracy"])
    assert analysis_plots.calibration(table, expected).axes


def test_calibration_bin_edges_and_bad_input() -> None:
    table = un.reliability_table(np.array([0.0, 0.5, 1.0]), np.array([True, True, True]), n_bins=2)
    assert table["n"].tolist() == [2, 1]  # (0, 0.5] takes 0 and 0.5, (0.5, 1] takes 1
    assert un.expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        un.reliability_table(np.array([1.2]), np.array([True]))


def test_description_follows_the_numbers() -> None:
    chance = pd.DataFrame({"auroc_variance": [0.49, 0.52], "auroc_1_minus_confidence": [0.7, 0.72]})
    described = un.describe_error_detection(chance)
    assert "does not separate" in described and "no better" in described
    useful = pd.DataFrame({"auroc_variance": [0.8], "auroc_1_minus_confidence": [0.7]})
    assert "ranks errors above" in un.describe_error_detection(useful) and "does better" in un.describe_error_detection(useful)
    assert "lower" in un.describe_error_detection(pd.DataFrame({"auroc_variance": [0.3], "auroc_1_minus_confidence": [0.6]}))
    assert "undefined" in un.describe_error_detection(pd.DataFrame({"auroc_variance": [np.nan],
                                                                    "auroc_1_minus_confidence": [np.nan]}))
