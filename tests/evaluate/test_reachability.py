from __future__ import annotations

import numpy as np

from vmhan_lib.evaluate.reachability import reachable
from vmhan_lib.metrics import score


def test_paper_vmhan_row_is_not_reachable_on_mnre_test() -> None:
    result = reachable(accuracy=94.03, precision=86.25, recall=85.36, n_instances=1614, n_gold_positive=640)
    assert not result.accuracy and not result.recall and not all(result)


def test_every_real_prediction_file_is_reachable() -> None:
    rng = np.random.default_rng(0)
    gold = ["None"] * 974 + ["a"] * 400 + ["b"] * 240
    for _ in range(20):
        pred = [g if rng.random() < rng.uniform(0.3, 0.95) else rng.choice(["None", "a", "b"]) for g in gold]
        pct = score(gold, pred).percent()
        assert all(reachable(pct["accuracy"], pct["precision"], pct["recall"], 1614, 640))
