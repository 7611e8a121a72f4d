"""Paired bootstrap over test instances: is system B's F1 really different from system A's?

Both systems predict the same test instances. Resampling the instances with replacement
R times, the difference Delta* = F1_B(sample) - F1_A(sample) gives a bootstrap distribution; we
report the observed difference, its 95 % percentile interval, and the two-sided p-value

    p = min(1, 2 * min(P*(Delta* <= 0), P*(Delta* >= 0)))

(the share of resamples on the far side of zero, doubled). F1 is the MNRE micro F1 over the
non-None labels (:mod:`vmhan_lib.metrics`), computed per resample from counts, vectorised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _f1_from_counts(correct: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    precision = np.divide(correct, predicted, out=np.zeros_like(correct, dtype=float), where=predicted > 0)
    recall = np.divide(correct, gold, out=np.zeros_like(correct, dtype=float), where=gold > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def paired_bootstrap_f1(
    gold: Sequence[Hashable],
    pred_a: Sequence[Hashable],
    pred_b: Sequence[Hashable],
    negative: Hashable = "None",
    resamples: int = 2000,
    seed: int = 0,
) -> PairedBootstrap:
    """Paired bootstrap of the micro-F1 difference between two prediction lists on the same gold."""
    if not len(gold) == len(pred_a) == len(pred_b) > 0:
        raise ValueError(f"need equal, non-zero lengths, got {len(gold)}, {len(pred_a)}, {len(pred_b)}")
    gold_arr = np.asarray(list(gold), dtype=object)
    per_system = []
    for pred in (pred_a, pred_b):
        pred_arr = np.asarray(list(pred), dtype=object)
        per_system.append((
            ((pred_arr == gold_arr) & (gold_arr != negative)).astype(np.int64),  # correct positive
            (pred_arr != negative).astype(np.int64),  # predicted positive
        ))
    gold_pos = (gold_arr != negative).astype(np.int64)

    def f1_difference(weights: np.ndarray) -> np.ndarray:
        """F1_B - F1_A with instance i counted weights[r, i] times, for each row r."""
        f1_a, f1_b = (_f1_from_counts(weights @ c, weights @ p, weights @ gold_pos) for c, p in per_system)
        return f1_b - f1_a

    n = len(gold_arr)
    rng = np.random.default_rng(seed)
    deltas = f1_difference(rng.multinomial(n, np.full(n, 1.0 / n), size=resamples))  # [R]
    observed = float(f1_difference(np.ones((1, n), dtype=np.int64))[0])
    tail = min(np.mean(deltas <= 0), np.mean(deltas >= 0))
    return PairedBootstrap(
        delta_f1=observed,
        ci_low=float(np.quantile(deltas, 0.025)),
        ci_high=float(np.quantile(deltas, 0.975)),
        p_value=float(min(1.0, 2 * tail)),
        resamples=resamples,
    )
