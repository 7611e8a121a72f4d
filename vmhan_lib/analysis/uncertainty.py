"""Does VM-HAN's predicted variance tell us when it is wrong? And is its confidence calibrated?

Inputs are the rows of :func:`vmhan_lib.analysis.breakdowns.load_predictions` (``gold``,
``predicted``, ``confidence`` = largest class probability, ``variance`` = mean predicted variance of
the head and tail nodes, written by :func:`vmhan_lib.train.loop.predict`). An *error* is any test
instance whose predicted label differs from the gold label (``None`` included).

- :func:`error_rate_by_variance_bin`: quantile bins of the variance, computed **within each run**
  (a seed's variance scale is its own), counts pooled over seeds per bin;
- :func:`error_detection_auroc`: per run, the AUROC of the variance as a score of "this prediction
  is wrong", beside the AUROC of 1 - confidence (the usual baseline detector); NaN, with a note,
  when a run has only errors or only correct predictions;
- :func:`reliability_table` and :func:`expected_calibration_error`: equal-width confidence bins
  ``(lo, hi]`` over ``[0, 1]`` (confidence 0 falls into the first), ECE = sum over bins of
  ``|bin| / n * |accuracy(bin) - mean confidence(bin)|``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` separating ``positives`` (True) from the rest, by
    the Mann-Whitney rank statistic (ties count one half); NaN when only one class is present."""
    scores = np.asarray(scores, dtype=float)
    positives = np.asarray(positives, dtype=bool)
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _errors(predictions: pd.DataFrame) -> np.ndarray:
    return (predictions["gold"] != predictions["predicted"]).to_numpy()


def _require_variance(predictions: pd.DataFrame) -> pd.DataFrame:
    with_variance = predictions.dropna(subset=["variance"])
    if with_variance.empty:
        raise ValueError("no prediction carries a variance: pass the predictions of a variational model")
    return with_variance


def error_rate_by_variance_bin(predictions: pd.DataFrame, n_bins: int = 5) -> pd.DataFrame:
    """Per variance quantile bin (1 = lowest variance): instances, errors, error rate, and the
    variance range seen in the bin; bins are quantiles within each run, pooled over runs.

    Runs whose variances have fewer distinct values than ``n_bins`` get fewer bins (ties are
    never split across bins).
    """
    rows = []
    for _, run in _require_variance(predictions).groupby(["variant", "seed"], sort=False):
        codes = pd.qcut(run["variance"].rank(method="min"), n_bins, labels=False, duplicates="drop")
        rows.append(pd.DataFrame({"bin": codes.to_numpy() + 1, "variance": run["variance"].to_numpy(),
                                  "error": _errors(run)}))
    binned = pd.concat(rows, ignore_index=True)
    table = binned.groupby("bin").agg(n=("error", "size"), errors=("error", "sum"),
                                      variance_min=("variance", "min"), variance_max=("variance", "max"))
    table["error_rate"] = table["errors"] / table["n"]
    return table.reset_index()


def error_detection_auroc(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per run: instances, errors, AUROC of the variance and of 1 - confidence as error detectors
    (NaN where a run has a single class; a note is printed)."""
    rows = []
    for (variant, seed), run in _require_variance(predictions).groupby(["variant", "seed"], sort=False):
        errors = _errors(run)
        if errors.all() or not errors.any():
            print(f"note: {variant} seed {seed}: {'every' if errors.all() else 'no'} prediction is wrong, "
                  "so AUROC is undefined (NaN)")
        rows.append({"variant": variant, "seed": seed, "n": len(run), "errors": int(errors.sum()),
                     "auroc_variance": auroc(run["variance"].to_numpy(), errors),
                     "auroc_1_minus_confidence": auroc(1 - run["confidence"].to_numpy(), errors)})
    return pd.DataFrame(rows)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width confidence bin ``(lo, hi]``: instances, mean confidence, accuracy (NaN for
    an empty bin)."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    if ((confidence < 0) | (confidence > 1)).any():
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.digitize(confidence, edges[1:-1], right=True)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        count = int(inside.sum())
        rows.append({"bin_low": edges[b], "bin_high": edges[b + 1], "n": count,
                     "mean_confidence": float(confidence[inside].mean()) if count else float("nan"),
                     "accuracy": float(correct[inside].mean()) if count else float("nan")})
    return pd.DataFrame(rows)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-width bins: sum of ``n_bin / n * |accuracy - mean confidence|`` (empty bins add 0)."""
    table = reliability_table(confidence, correct, n_bins)
    filled = table[table["n"] > 0]
    if filled.empty:
        raise ValueError("cannot compute the calibration error of zero predictions")
    gaps = (filled["accuracy"] - filled["mean_confidence"]).abs()
    return float((filled["n"] * gaps).sum() / filled["n"].sum())


def describe_error_detection(aurocs: pd.DataFrame, margin: float = 0.05) -> str:
    """One sentence, from the numbers, on whether the variance flags errors: its mean AUROC over
    runs against chance (0.5 ± ``margin``) and against 1 - confidence."""
    variance = aurocs["auroc_variance"].mean()
    confidence = aurocs["auroc_1_minus_confidence"].mean()
    if np.isnan(variance):
        return "AUROC is undefined (every run is all right or all wrong): no conclusion on the variance is possible."
    if abs(variance - 0.5) <= margin:
        verdict = f"the variance does not separate errors from correct predictions (AUROC {variance:.3f}, chance is 0.5)"
    elif variance < 0.5:
        verdict = f"the variance is *lower* on errors than on correct predictions (AUROC {variance:.3f} < 0.5)"
    else:
        verdict = f"the variance ranks errors above correct predictions (AUROC {variance:.3f})"
    if np.isnan(confidence):
        return verdict + "."
    better = "better" if variance > confidence else "no better"
    return f"{verdict}; as an error detector it does {better} than 1 - confidence (AUROC {confidence:.3f})."
