"""Paired bootstrap over test instances: is system B's F1 really different from system A's?

Both systems predict the same test instances. Resampling the instances with replacement
R times, the difference Delta* = F1_B(sample) - F1_A(sample) gives a bootstrap distribution; we
report the observed difference, its 95 % percentile interval, and the two-sided p-value

    p = min(1, 2 * min(P*(Delta* <= 0), P*(Delta* >= 0)))

(the share of resamples on the far side of zero, doubled). F1 is the MNRE micro F1 over the
non-None labels (:mod:`vmhan_lib.metrics`), computed per resample from counts, vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np


@dataclass(frozen=True)
class PairedBootstrap:
    """Observed F1 difference (B - A, fractions), 95 % interval and two-sided p-value."""

    delta_f1: float
    ci_low: float
    ci_high: float
    p_value: float
    resamples: int


def _f1_from_counts(correct: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    precision = np.divide(correct, predicted, out=np.zeros_like(correct, dtype=float), where=predicted > 0)
    recall = np.divide(correct, gold, out=np.zeros_like(correct, dtype=float), where=gold > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def paired_bootstrap_f1_runs(gold: Sequence[Hashable], runs_a: Sequence[Sequence[Hashable]],
                             runs_b: Sequence[Sequence[Hashable]], negative: Hashable = "None",
                             resamples: int = 2000, seed: int = 0) -> PairedBootstrap:
    """Paired bootstrap over test instances for systems trained with several seeds (one run per
    system: the classic paired bootstrap, ``runs_a = [pred_a]``).

    Each system's F1 is the micro F1 of its runs pooled (every run predicts every instance); a
    resample draws instances, and every run of both systems is scored on the same draw.
    """
    n = len(gold)
    if n == 0 or not runs_a or not runs_b or any(len(run) != n for run in (*runs_a, *runs_b)):
        raise ValueError(f"need equal, non-zero lengths: gold has {n}, runs have "
                         f"{sorted({len(run) for run in (*runs_a, *runs_b)})}")
    gold_arr = np.asarray(list(gold), dtype=object)
    gold_pos = (gold_arr != negative).astype(np.int64)

    def pooled_counts(runs: Sequence[Sequence[Hashable]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per instance, summed over runs: correct positive, predicted positive, gold positive."""
        preds = [np.asarray(list(run), dtype=object) for run in runs]
        correct = sum(((p == gold_arr) & (gold_arr != negative)).astype(np.int64) for p in preds)
        predicted = sum((p != negative).astype(np.int64) for p in preds)
        return correct, predicted, gold_pos * len(runs)

    per_system = [pooled_counts(runs_a), pooled_counts(runs_b)]

    def f1_difference(weights: np.ndarray) -> np.ndarray:
        """F1_B - F1_A with instance i counted weights[r, i] times, for each row r."""
        f1_a, f1_b = (_f1_from_counts(weights @ c, weights @ p, weights @ g) for c, p, g in per_system)
        return f1_b - f1_a

    rng = np.random.default_rng(seed)
    deltas = f1_difference(rng.multinomial(n, np.full(n, 1.0 / n), size=resamples))  # [R]
    observed = float(f1_difference(np.ones((1, n), dtype=np.int64))[0])
    tail = min(np.mean(deltas <= 0), np.mean(deltas >= 0))
    return PairedBootstrap(delta_f1=observed, ci_low=float(np.quantile(deltas, 0.025)),
                           ci_high=float(np.quantile(deltas, 0.975)), p_value=float(min(1.0, 2 * tail)),
                           resamples=resamples)


SINGLE_SEED_VERDICT = "not yet comparable with a seed spread (one seed on a side)"
"""How a sentence states :func:`beyond_seed_spread`'s ``None``."""


def beyond_seed_spread(mean: float, std: float, seeds: int, reference_mean: float, reference_std: float,
                       reference_seeds: int) -> tuple[float, float, bool | None]:
    """``mean - reference_mean``, the larger of the two seed standard deviations, and whether the
    difference exceeds it in absolute value (within it, two seed means are not told apart); ``None``
    for the last when either side has fewer than two seeds (a single run has no spread to compare with)."""
    difference, spread = mean - reference_mean, max(std, reference_std)
    if min(seeds, reference_seeds) < 2:
        return difference, spread, None
    return difference, spread, abs(difference) > spread
