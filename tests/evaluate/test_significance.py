from __future__ import annotations

import numpy as np
import pytest

from vmhan_lib.evaluate.significance import paired_bootstrap_f1_runs
from vmhan_lib.metrics import score

LABELS = ["None", "a", "b"]


def _systems(seed: int, n: int = 400, acc_a: float = 0.6, acc_b: float = 0.6):
    rng = np.random.default_rng(seed)
    gold = rng.choice(LABELS, size=n, p=[0.6, 0.25, 0.15]).tolist()
    noisy = lambda acc: [g if rng.random() < acc else rng.choice(LABELS) for g in gold]  # noqa: E731
    return gold, noisy(acc_a), noisy(acc_b)


def test_identical_systems_have_no_difference() -> None:
    gold, pred, _ = _systems(0)
    result = paired_bootstrap_f1_runs(gold, [pred], [pred], resamples=500)
    assert result.delta_f1 == 0 and result.ci_low == 0 and result.ci_high == 0 and result.p_value == 1.0


def test_observed_delta_equals_score_difference_and_clear_winner_is_significant() -> None:
    gold, weak, strong = _systems(1, acc_a=0.4, acc_b=0.9)
    result = paired_bootstrap_f1_runs(gold, [weak], [strong], resamples=1000)
    assert result.delta_f1 == pytest.approx(score(gold, strong).f1 - score(gold, weak).f1)
    assert result.p_value < 0.01 and result.ci_low > 0


def test_agrees_with_a_plain_loop_bootstrap() -> None:
    """Same resampling distribution as an independent, slow implementation with explicit indices."""
    gold, a, b = _systems(2, n=150, acc_a=0.55, acc_b=0.65)
    fast = paired_bootstrap_f1_runs(gold, [a], [b], resamples=3000, seed=5)
    rng = np.random.default_rng(11)
    deltas = []
    for _ in range(3000):
        idx = rng.integers(0, len(gold), len(gold))
        g = [gold[i] for i in idx]
        deltas.append(score(g, [b[i] for i in idx]).f1 - score(g, [a[i] for i in idx]).f1)
    deltas = np.array(deltas)
    assert fast.ci_low == pytest.approx(np.quantile(deltas, 0.025), abs=0.02)
    assert fast.ci_high == pytest.approx(np.quantile(deltas, 0.975), abs=0.02)
    slow_p = min(1.0, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0)))
    assert fast.p_value == pytest.approx(slow_p, abs=0.05)


def test_length_mismatch() -> None:
    with pytest.raises(ValueError, match="equal, non-zero lengths"):
        paired_bootstrap_f1_runs(["a"], [["a"]], [["a", "b"]])


def test_pooled_runs_observed_delta_is_the_pooled_micro_f1_difference() -> None:
    gold, a1, b1 = _systems(3, acc_a=0.5, acc_b=0.7)
    _, a2, b2 = _systems(4, acc_a=0.5, acc_b=0.7)
    result = paired_bootstrap_f1_runs(gold, [a1, a2], [b1, b2], resamples=500)
    pooled = lambda runs: score(gold * 2, runs[0] + runs[1]).f1  # noqa: E731
    assert result.delta_f1 == pytest.approx(pooled([b1, b2]) - pooled([a1, a2]))
    assert result.ci_low <= result.delta_f1 <= result.ci_high


def test_beyond_seed_spread_uses_the_larger_spread_and_a_strict_bound() -> None:
    from vmhan_lib.evaluate.significance import beyond_seed_spread

    assert beyond_seed_spread(62.0, 0.2, 3, 61.0, 1.5, 3) == (pytest.approx(1.0), 1.5, False)
    assert beyond_seed_spread(60.0, 0.2, 2, 61.0, 0.5, 5) == (pytest.approx(-1.0), 0.5, True)
    assert beyond_seed_spread(61.5, 0.5, 3, 61.0, 0.1, 3)[2] is False  # equal to the spread: not beyond
    assert beyond_seed_spread(63.0, 0.0, 1, 61.0, 0.4, 3) == (pytest.approx(2.0), 0.4, None)  # one run: no spread
