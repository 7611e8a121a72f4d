"""Can a reported (accuracy, precision, recall) come from one prediction file on a given test set?

With N test instances of which G have a non-None gold label, one prediction file has integer
counts: c correct non-None, p predicted non-None, k correct None. Then

    accuracy = (c + k) / N,   recall = c / G,   precision = c / p.

A reported value rounded to two decimals (percent) is reachable if some integer count reproduces
it after rounding. Means over several runs need not be reachable; single runs must be.
"""

from __future__ import annotations

from typing import NamedTuple


class Reachability(NamedTuple):
    """Whether each reported percentage can come from one prediction file (``all(r)``: all three)."""

    accuracy: bool
    recall: bool
    precision: bool


def _fraction_reachable(percent: float, denominators: range, decimals: int) -> bool:
    for d in denominators:
        numerator = round(percent / 100 * d)
        for n in (numerator - 1, numerator, numerator + 1):
            if 0 <= n <= d and round(100 * n / d, decimals) == round(percent, decimals):
                return True
    return False


def reachable(accuracy: float | None, precision: float | None, recall: float | None,
              n_instances: int, n_gold_positive: int, decimals: int = 2) -> Reachability:
    """Check each reported percentage (None = not reported, counted as reachable)."""
    return Reachability(
        accuracy=accuracy is None or _fraction_reachable(accuracy, range(n_instances, n_instances + 1), decimals),
        recall=recall is None or _fraction_reachable(recall, range(n_gold_positive, n_gold_positive + 1), decimals),
        precision=precision is None or _fraction_reachable(precision, range(1, n_instances + 1), decimals),
    )
